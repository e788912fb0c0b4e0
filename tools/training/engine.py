"""The training core shared by `start_fine_tuning` jobs and the GPU benchmark.

Built on transformers' Trainer (checkpoints, exact resume, schedulers) fed with pre-packed
token-budget micro-batches in a fixed seeded order, so a resumed run replays the same
batches and its loss curve continues where it stopped.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from graphtune.tools.errors import TrainingConfigError
from graphtune.tools.training.compiled_layers import sdpa_attention
from graphtune.tools.training.config import LoraJobConfig
from graphtune.tools.training.distributed import (
    RankInfo,
    agree_on_stop,
    gather_floats,
    rank_info,
    sum_over_ranks,
)
from graphtune.tools.training.packing import (
    BLOCK_TOKENS,
    REPLAY_MASK_KEY,
    collate_packed,
    collate_padded,
    label_tokens,
    plan_batches,
    round_up,
)
from graphtune.tools.training.replay_kl import final_hidden_states, kl_to_base, predicting_positions
from graphtune.tools.training.shared_prefix import (
    DOCUMENTS_KEY,
    SAVED_TOKENS_KEY,
    attention_mask,
    prefix_length,
    row_length,
)
from graphtune.tools.training.teacher_states import TeacherStates, replay_examples
from graphtune.tools.training.tokenize import Example

CHECKPOINT_PREFIX = "checkpoint-"
PAD_TOKENS_KEY = "graphtune_pad_tokens"
# a batch with replay answer tokens (KL on): the flat positions that predict them, found on the host
# (no device sync in the step), and the batch's index in the plan (its teacher states: teacher_states.py)
REPLAY_POSITIONS_KEY = "graphtune_replay_positions"
BATCH_INDEX_KEY = "graphtune_batch_index"
CUDA_LOADER_WORKERS = 1  # loader_workers; the benchmark sets 0 to measure without


@dataclass
class Plan:
    """All micro-batches of the run (epochs concatenated) and what they add up to. The batches and
    `tokens_per_batch` (their budget) are those of the unshared plan; `tokens` counts what is
    computed (a shared prefix once per row), `unshared_tokens` every example's full tokens."""

    batches: list[list[Example]]
    epoch_of_batch: list[int]
    steps: int
    tokens: int
    tokens_per_batch: int
    batch_size: int
    grad_accum: int
    shared_prefix: int = 0  # tokens of the prefix each packed row holds once (0: rows share nothing)
    unshared_tokens: int = 0


def default_token_budget(cfg: LoraJobConfig, device: str, model_params: int | None = None) -> int:
    """Tokens per packed micro-batch. On CUDA a step of a small model is launch-bound (~170 ms of
    kernel launches for SmolLM2-135M's 30 LoRA'd layers whatever the row length; measured in
    bench/RESULTS.md), so small models get long rows to amortize it: 49,152 tokens under 300M
    parameters, 32,768 under 1B, 8,192 above (auto checkpointing keeps any of them in memory)."""
    if cfg.tokens_per_batch:
        return cfg.tokens_per_batch
    cap = 4096
    if device == "cuda":
        cap = 49152 if model_params and model_params < 300e6 else 32768 if model_params and model_params < 1e9 \
            else 8192
    if cfg.batch_size:
        return min(cfg.batch_size * cfg.max_seq_length, cap)
    return cap


def make_plan(examples: list[Example], cfg: LoraJobConfig, device: str, *, budget: int | None = None,
              batch_size: int | None = None, grad_accum: int | None = None, model_params: int | None = None) -> Plan:
    """The run's micro-batches. Planned on every example's full length whether or not a shared
    prefix is on: sharing only shortens the rows that are computed, so each step holds the same
    examples, with the same loss and gradients, as without it (and a dry run's step count, made
    without the marks, is the run's). `tokens` then counts the shorter rows."""
    budget = budget or default_token_budget(cfg, device, model_params)
    batch_size = batch_size or cfg.examples_per_batch
    grad_accum = grad_accum or cfg.gradient_accumulation_steps
    prefix = prefix_length(examples) if cfg.packing and cfg.shared_prefix else 0
    lengths = [len(e) for e in examples]
    batches, epochs = [], []
    for epoch in range(cfg.num_epochs):
        limit = budget if cfg.packing else max(lengths) * batch_size
        for members in plan_batches(lengths, max_tokens=max(limit, max(lengths)), max_examples=batch_size,
                                    seed=cfg.seed + epoch):
            batches.append([examples[i] for i in members])
            epochs.append(epoch)
    if grad_accum > 1:
        batches, epochs = split_to_multiple(batches, epochs, grad_accum)
    steps = math.ceil(len(batches) / grad_accum)
    if cfg.max_steps:
        steps = min(steps, cfg.max_steps)
        batches, epochs = batches[: steps * grad_accum], epochs[: steps * grad_accum]
    return Plan(batches, epochs, steps, sum(row_length(b, prefix > 0) for b in batches), budget, batch_size,
                grad_accum, prefix, sum(len(e) for b in batches for e in b))


def split_to_multiple(batches: list[list[Example]], epochs: list[int], multiple: int
                      ) -> tuple[list[list[Example]], list[int]]:
    """Split the largest micro-batches in two until their count is a multiple of `multiple`.

    Every optimizer step then consumes exactly `multiple` micro-batches (the global count of
    a multi-GPU run), so ranks never run out unevenly (no duplicated last batch) and the same
    plan resumes on another GPU count with the same data order. Deterministic: it depends
    only on the plan, never on the number of ranks."""
    batches, epochs = list(batches), list(epochs)
    while len(batches) % multiple:
        sizes = [len(b) for b in batches]
        i = max(range(len(batches)), key=lambda k: (sizes[k], -k))
        if sizes[i] < 2:
            break  # nothing left to split: the last step is short (single examples fill it)
        half = sizes[i] // 2
        batches[i:i + 1] = [batches[i][:half], batches[i][half:]]
        epochs[i:i + 1] = [epochs[i], epochs[i]]
    return batches, epochs


class PackedDataset:
    """torch-style dataset whose items are whole micro-batches (already collated)."""

    def __init__(self, batches: list[list[Example]], packing: bool, pad_id: int, pad_to: int | None = None,
                 replay_mask: bool = False, share_prefix: bool = False) -> None:
        self.batches, self.packing, self.pad_id, self.pad_to = batches, packing, pad_id, pad_to
        self.replay_mask, self.share_prefix = replay_mask, share_prefix and packing
        self.arrays: dict[int, Any] = {}  # each example's tokens as arrays, converted once (collate_packed)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, i: int) -> dict[str, Any]:
        leave_job_process_group()
        members = self.batches[i]
        if not self.packing:
            return _replay_keys(collate_padded(members, self.pad_id, replay_mask=self.replay_mask), i)
        batch = collate_packed(members, pad_to=self.pad_to, replay_mask=self.replay_mask,
                               share_prefix=self.share_prefix, arrays=self.arrays)
        computed = row_length(members, self.share_prefix)
        if self.pad_to:  # popped by the trainer before the forward: tokens/s counts real tokens only
            batch[PAD_TOKENS_KEY] = int(batch["input_ids"].numel()) - computed
        if self.share_prefix:  # popped likewise: what the row would hold more without sharing
            batch[SAVED_TOKENS_KEY] = sum(len(m) for m in members) - computed
        return _replay_keys(batch, i)


def leave_job_process_group() -> None:
    """In a loader worker (loader_workers): lead a process group of its own (once: then it already does).
    A job is stopped gracefully with SIGTERM to its process group (a torchrun rank, `kill -- -PGID`, a
    service manager), and torch's worker, signalled by anyone but its parent, dies and fails the training
    process, which then ends failed without a checkpoint instead of interrupted with one. Outside the
    group the worker ends when its parent does (torch's parent-death check). In the training process
    itself: nothing to do."""
    from torch.utils.data import get_worker_info

    if get_worker_info() is not None and hasattr(os, "setpgid") and os.getpgid(0) != os.getpid():
        os.setpgid(0, 0)


def _replay_keys(batch: dict[str, Any], index: int) -> dict[str, Any]:
    """The replay mask as what the KL term reads: positions and the batch's index (popped by the trainer)."""
    mask = batch.pop(REPLAY_MASK_KEY, None)
    if mask is not None:
        batch[REPLAY_POSITIONS_KEY] = predicting_positions(mask)
        batch[BATCH_INDEX_KEY] = index
    return batch


def evaluate_loss(model: Any, batches: list[list[Example]], *, packing: bool, pad_id: int, device: str) -> float | None:
    """Token-weighted mean loss over the batches (the same masking as training)."""
    import torch

    if not batches:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), sdpa_attention(model):
        for batch in PackedDataset(batches, packing, pad_id):
            n = label_tokens(batch)
            if not n:
                continue
            out = model(**{k: v.to(device) for k, v in batch.items()}, use_cache=False)  # a cache disables packing masks
            total += float(out.loss) * n
            count += n
    if was_training:
        model.train()
    return total / count if count else None


@dataclass
class Hooks:
    """How the engine talks to its caller (a job or the benchmark)."""

    on_metrics: Callable[[dict[str, Any]], None] = lambda m: None
    should_stop: Callable[[], str | None] = lambda: None
    on_event: Callable[[str, dict[str, Any]], None] = lambda t, d: None
    eval_fn: Callable[[], float | None] | None = None
    eval_steps: int | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def _checkpoint_complete(path: Path) -> bool:
    """trainer_state.json and the adapter are there, and every torch file (optimizer, scheduler, each
    rank's RNG state) is a whole zip archive: a rank killed while saving leaves its own RNG file empty
    or cut short, even when rank 0 finished the checkpoint, and resuming from it fails with EOFError."""
    import zipfile

    if not ((path / "trainer_state.json").is_file() and (path / "adapter_model.safetensors").is_file()):
        return False
    return all(zipfile.is_zipfile(f) for f in path.iterdir() if f.suffix in {".pt", ".pth"})


def newest_checkpoint(folder: Path, on_event: Callable[[str, dict[str, Any]], None] | None = None) -> Path | None:
    """The newest complete checkpoint (trainer_state.json + adapter weights); half-written ones are skipped."""
    if not folder.exists():
        return None
    candidates = sorted((p for p in folder.iterdir() if p.name.startswith(CHECKPOINT_PREFIX)),
                        key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]) if p.name[len(CHECKPOINT_PREFIX):].isdigit() else -1,
                        reverse=True)
    for path in candidates:
        if _checkpoint_complete(path):
            return path
        if on_event:
            on_event("log", {"message": f"skipping incomplete checkpoint {path.name}"})
    return None


def distributed_arguments(model: Any, ranks: RankInfo, strategy: str) -> dict[str, Any]:
    """TrainingArguments for DDP (LoRA leaves most weights frozen: no unused-parameter search) or
    FSDP2 (each decoder layer its own shard unit, resharded after forward)."""
    if not ranks.distributed:
        return {}
    if strategy != "fsdp":
        return {"ddp_find_unused_parameters": False}
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layer_classes = sorted({type(m).__name__ for m in base.modules() if type(m).__name__.endswith("DecoderLayer")})
    return {"fsdp": "full_shard auto_wrap",
            "fsdp_config": {"version": 2, "transformer_layer_cls_to_wrap": layer_classes,
                            "reshard_after_forward": True, "state_dict_type": "FULL_STATE_DICT"}}


class _TrainerSteps:
    """What graphtune changes in transformers' Trainer: batches in plan order, tokens counted
    without padding, the replay KL added to the loss. Mixed into `Trainer` in build_trainer
    (`type(...)`), so importing this module imports neither torch nor transformers."""

    def __init__(self, *args: Any, graphtune_hooks: Hooks, graphtune_replay_kl: float,
                 graphtune_batches: list[list[Example]], **kwargs: Any) -> None:
        self.graphtune_hooks, self.graphtune_replay_kl = graphtune_hooks, graphtune_replay_kl
        self.graphtune_batches, self.graphtune_teacher = graphtune_batches, None
        super().__init__(*args, **kwargs)

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        import torch

        return torch.utils.data.SequentialSampler(train_dataset or self.train_dataset)  # type: ignore[attr-defined]

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
        padding = int(inputs.pop(PAD_TOKENS_KEY, 0))
        saved = int(inputs.pop(SAVED_TOKENS_KEY, 0))
        self.replay_positions = inputs.pop(REPLAY_POSITIONS_KEY, None)
        self.replay_batch = inputs.pop(BATCH_INDEX_KEY, None)
        stats = self.graphtune_hooks.stats
        stats["tokens_seen"] = stats.get("tokens_seen", 0) + int(inputs["input_ids"].numel()) - padding
        stats["tokens_shared"] = stats.get("tokens_shared", 0) + saved  # computed once instead of per document
        return super().training_step(model, inputs, num_items_in_batch)  # type: ignore[misc]

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        documents = inputs.pop(DOCUMENTS_KEY, None)
        if documents is not None:  # a shared-prefix row: its documents' mask, not one derived from position ids
            inputs["attention_mask"] = attention_mask(self.model, documents)  # type: ignore[attr-defined]
        positions, self.replay_positions = getattr(self, "replay_positions", None), None
        weight = self.graphtune_replay_kl
        if weight <= 0:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)  # type: ignore[misc]
        teacher = self._teacher_states()
        if positions is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)  # type: ignore[misc]
        members = self.graphtune_batches[self.replay_batch]
        self.graphtune_teacher = teacher = teacher.covering(self.model, members, self.args.device)  # type: ignore[attr-defined]
        # gathered and sent before the forward is queued: the host work and the copy overlap it
        teacher_hidden = teacher.for_batch(members, positions.device)
        with final_hidden_states(self.model) as caught:  # type: ignore[attr-defined]
            loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)  # type: ignore[misc]
        kl_sum, count = kl_to_base(self.model, caught["hidden"], positions, teacher_hidden)  # type: ignore[attr-defined]
        if count:  # per labelled token, like the cross-entropy it is added to
            tokens = num_items_in_batch if num_items_in_batch is not None else max(label_tokens(inputs), 1)
            loss = loss + weight * kl_sum / tokens
            self.graphtune_hooks.stats["replay_kl"] = (kl_sum / count).detach()  # read at logging time: no sync per step
        return (loss, outputs) if return_outputs else loss

    def _teacher_states(self) -> TeacherStates:
        """The base model's states at every replay answer position of this rank's micro-batches,
        computed at the first step (inside the trainer, where the model is on its device)."""
        if self.graphtune_teacher is None:
            started = time.perf_counter()
            ranks = rank_info()
            examples = replay_examples(self.graphtune_batches, ranks.rank, ranks.world_size)
            self.graphtune_teacher = TeacherStates.compute(self.model, examples,  # type: ignore[attr-defined]
                                                           self.args.device)  # type: ignore[attr-defined]
            self.graphtune_hooks.on_event("log", {"message": (
                f"base model's replay states: {len(examples)} replay rows, "
                f"{self.graphtune_teacher.states.shape[0]} answer positions, "
                f"{self.graphtune_teacher.nbytes / 2**20:.0f} MiB, {time.perf_counter() - started:.1f} s")})
        return self.graphtune_teacher


def release_run_caches(trainer: Any) -> None:
    """Free what only the training steps need (the replay teacher's pinned states, the rows' token arrays)
    before the model is evaluated and saved: the trainer itself stays alive until the job returns."""
    if hasattr(trainer, "graphtune_teacher"):
        trainer.graphtune_teacher = None
    dataset = getattr(trainer, "train_dataset", None)
    if isinstance(dataset, PackedDataset):
        dataset.arrays.clear()


class _Progress:
    """Step-end evaluation and stop requests, and the metrics of each log step, for the job's
    events. Mixed into transformers' `TrainerCallback` in build_trainer (no import here)."""

    def __init__(self, hooks: Hooks, plan: Plan, device: str) -> None:
        self.hooks, self.plan, self.device = hooks, plan, device
        self.last_time, self.last_tokens, self.started = time.perf_counter(), 0, time.perf_counter()
        self.first_step: int | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        hooks = self.hooks
        if self.first_step is None:
            self.first_step = state.global_step - 1
        if hooks.eval_fn and hooks.eval_steps and state.global_step % hooks.eval_steps == 0 \
                and state.global_step < state.max_steps:
            loss = hooks.eval_fn()
            if loss is not None:
                state.log_history.append({"step": state.global_step, "eval_loss": loss})
                hooks.on_metrics({"step": state.global_step, "eval_loss": round(loss, 6),
                                  "eval_perplexity": round(math.exp(min(loss, 50)), 4)})
        reason = agree_on_stop(hooks.should_stop())
        if reason:
            hooks.stats["stopped"] = reason
            control.should_save = True
            control.should_training_stop = True
        if reason or state.global_step >= state.max_steps:  # the last step's loss, whatever logging_steps is
            control.should_log = True

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
        if not logs or "loss" not in logs:
            return
        hooks, plan = self.hooks, self.plan
        now, tokens = time.perf_counter(), int(sum_over_ranks(hooks.stats.get("tokens_seen", 0)))
        rate = (tokens - self.last_tokens) / max(now - self.last_time, 1e-9)
        done = state.global_step - (self.first_step or 0)
        per_step = (now - self.started) / max(done, 1)
        metrics = {"step": state.global_step, "max_steps": state.max_steps,
                   "epoch": plan.epoch_of_batch[min(state.global_step * plan.grad_accum, len(plan.batches)) - 1] + 1,
                   "loss": logs["loss"], "learning_rate": logs.get("learning_rate"),
                   "grad_norm": logs.get("grad_norm"), "tokens_per_second": round(rate, 1),
                   "tokens_seen": tokens, "eta_seconds": round(per_step * (state.max_steps - state.global_step), 1)}
        if plan.shared_prefix:  # tokens_seen counts computed tokens; this one every document's whole prefix too
            metrics["tokens_seen_unshared"] = tokens + int(sum_over_ranks(hooks.stats.get("tokens_shared", 0)))
        if "replay_kl" in hooks.stats:  # KL(base || tuned) per replay answer token, last micro-batch
            metrics["replay_kl"] = round(float(hooks.stats.pop("replay_kl")), 5)
        if self.device == "cuda":
            metrics.update(_gpu_memory())
        self.last_time, self.last_tokens = now, tokens
        hooks.on_metrics(metrics)


def _gpu_memory() -> dict[str, Any]:
    """Peak GPU memory of the busiest rank (and of each rank, with several)."""
    import torch

    per_gpu = gather_floats(torch.cuda.max_memory_allocated() / 2**30)
    found: dict[str, Any] = {"gpu_memory_gib": round(max(per_gpu), 2)}
    if len(per_gpu) > 1:
        found["gpu_memory_gib_per_gpu"] = [round(g, 2) for g in per_gpu]
    return found


def padded_row_tokens(plan: Plan, cfg: LoraJobConfig, device: str) -> int | None:
    """The one length every packed CUDA row is padded to (compiled kernels see one shape), on
    flex_attention's 128-token grid: the budget, or the longest row when an example is longer than
    the budget (plan_batches then fills rows up to that example's length). With a shared prefix, the
    longest row as computed: the rows hold the unshared plan's examples, and padding them back to the
    budget would compute the saved tokens as padding."""
    if device != "cuda" or not cfg.packing:
        return None
    if plan.shared_prefix:
        return round_up(max((row_length(b, True) for b in plan.batches), default=1), BLOCK_TOKENS)
    longest = max((sum(len(e) for e in b) for b in plan.batches), default=0)
    return round_up(max(plan.tokens_per_batch, longest), BLOCK_TOKENS)


def build_trainer(model: Any, plan: Plan, cfg: LoraJobConfig, device: str, out_dir: Path, pad_id: int,
                  hooks: Hooks, strategy: str = "ddp") -> Any:
    from transformers import Trainer, TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    ranks = rank_info()
    if plan.grad_accum % ranks.world_size:
        raise TrainingConfigError(
            f"this run takes {plan.grad_accum} micro-batches per optimizer step, which {ranks.world_size} ranks "
            "cannot share evenly.", field="gpus",
            hint=f"Use a GPU count that divides {plan.grad_accum} (resume keeps the data order of the first run).")
    args = _training_arguments(model, plan, cfg, device, out_dir, ranks, strategy)
    # CUDA: every packed row padded to the token budget, so each step has one shape (measured 5-13 % faster:
    # compiled attention-mask and kernel caches are reused; bench/small_model_speed.py)
    # rounded up to flex_attention's 128-token blocks: a row length off the block grid is what inductor
    # fails to compile for some shapes (and the start-up check probes a block-aligned row)
    pad_to = padded_row_tokens(plan, cfg, device)
    dataset = PackedDataset(plan.batches, cfg.packing, pad_id, pad_to, replay_mask=cfg.general_replay_kl > 0,
                            share_prefix=plan.shared_prefix > 0)
    trainer_class = type("_Trainer", (_TrainerSteps, Trainer), {})
    callback = type("_Callback", (_Progress, TrainerCallback), {})(hooks, plan, device)
    trainer = trainer_class(model=model, args=args, train_dataset=dataset, data_collator=first_item,
                            callbacks=[callback], graphtune_hooks=hooks, graphtune_replay_kl=cfg.general_replay_kl,
                            graphtune_batches=plan.batches)
    trainer.remove_callback(PrinterCallback)  # metrics go to job events, not to stdout
    return trainer


def first_item(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The collator: each dataset item is already a whole collated micro-batch (a module-level
    function, not a lambda, so a loader worker started by spawn can unpickle it)."""
    return items[0]


def loader_workers(device: str) -> int:
    """Processes that collate rows while the GPU trains. On CUDA one worker takes the collation (tens
    of ms for a 49k-token row) off the process that launches the kernels: a small model's step there
    is bound by that process's time (thirteenth session's profile: ~250 ms of host time per 0.22 s
    step). Elsewhere the rows are collated in-process (a CPU step is far longer; MPS gains little)."""
    return CUDA_LOADER_WORKERS if device == "cuda" else 0


def logging_every(cfg: LoraJobConfig, plan: Plan, device: str) -> int:
    """Steps between metrics events: the setting, else every step, and on CUDA about 100 events per run.
    Each event reads the loss from the device and waits there for the step to finish, so a GPU that
    logs every step idles while the host prepares the next batch. (No gain was measured beside the loader
    worker, within the ~10 % spread of sweep processes on an H200; the `email` job figures of
    bench/RESULTS.md were measured with it.) A CPU step has nothing queued to lose."""
    if cfg.logging_steps:
        return cfg.logging_steps
    return max(1, plan.steps // 100) if device == "cuda" else 1


def _training_arguments(model: Any, plan: Plan, cfg: LoraJobConfig, device: str, out_dir: Path, ranks: Any,
                        strategy: str) -> Any:
    from transformers import TrainingArguments

    warmup = cfg.warmup if cfg.warmup < 1 else int(cfg.warmup)
    workers = loader_workers(device)
    args = TrainingArguments(
        output_dir=str(out_dir), per_device_train_batch_size=1,
        gradient_accumulation_steps=plan.grad_accum // ranks.world_size,  # a step is grad_accum micro-batches in all
        max_steps=plan.steps, learning_rate=cfg.learning_rate, warmup_steps=warmup, weight_decay=cfg.weight_decay,
        lr_scheduler_type="cosine", logging_steps=logging_every(cfg, plan, device), save_strategy="steps",
        save_steps=cfg.save_steps or 50, save_total_limit=2, eval_strategy="no", report_to=[], seed=cfg.seed,
        data_seed=cfg.seed, bf16=device == "cuda", use_cpu=device == "cpu", remove_unused_columns=False,
        dataloader_num_workers=workers, dataloader_persistent_workers=workers > 0,
        dataloader_prefetch_factor=2 if workers else None, dataloader_pin_memory=device == "cuda", disable_tqdm=True,
        optim="adamw_torch_fused" if device == "cuda" else "adamw_torch", max_grad_norm=1.0,
        save_only_model=False, logging_first_step=True,
        **distributed_arguments(model, ranks, strategy),
    )
    if device == "cuda" and not ranks.distributed:
        _ = args.device  # resolve devices first, then: one process, one GPU. With several GPUs visible,
        args._n_gpu = 1  # Trainer would wrap the model in nn.DataParallel (a replica copy per step, and a
        # loss scaled by the GPU count); more GPUs are used through torchrun ranks instead (launch.py)
    return args
