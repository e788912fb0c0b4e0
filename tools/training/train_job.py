"""The `train` job: dataset -> tokens -> packed plan -> LoRA/QLoRA training -> evaluated adapter.

Safe points: every optimizer step checks for cancel/SIGTERM and, if asked, saves a
checkpoint before stopping, so `resume_fine_tuning` continues exactly. The model folder is
published atomically at the very end: a failed job never leaves a folder that looks finished.
"""

from __future__ import annotations

import gc
import json
import math
import platform
import random
import shutil
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from graphtune.tools.version import __version__
from graphtune.tools.dataset.atomic import staged_folder, sweep_temp, write_text_atomic
from graphtune.tools.errors import JobCancelled, OutOfMemory, TrainingConfigError
from graphtune.tools.job_context import JobContext
from graphtune.tools.training import engine
from graphtune.tools.training.artifacts import write_loss_plot, write_metadata
from graphtune.tools.training.base_models import resolve_base_model
from graphtune.tools.training.calibration import measurement
from graphtune.tools.training.compiled_layers import compile_decoder_layers, wants_compiled_layers
from graphtune.tools.training.config import LoraJobConfig, check_kl_strategy, resolve_device
from graphtune.tools.training.data_files import locate, read_conversations
from graphtune.tools.training.distributed import RankInfo, init_process_group, rank_info, sum_over_ranks
from graphtune.tools.training.estimate import estimate, lora_parameter_count, model_shape
from graphtune.tools.training.evaluate import evaluate_knowledge, read_probes, select_probes
from graphtune.tools.training.knowledge_report import knowledge_metrics, summary_of, write_probe_answers
from graphtune.tools.training.model_loading import (  # noqa: I001
    count_params,
    enable_checkpointing,
    load_model,
    load_tokenizer,
)
from graphtune.tools.training.answer_cache import AnswerCache
from graphtune.tools.training.base_style import has_own_chat_template
from graphtune.tools.training.general_replay import (
    CHAT_ANSWERS,
    CHAT_DECODING,
    COMPLETION_DECODING,
    COMPLETION_MAX_NEW_TOKENS,
    COMPLETION_PROMPT,
    PLAIN_TEXT_ANSWERS,
    REPLAY_MAX_NEW_TOKENS,
    ReplaySet,
    replay_conversations,
    replay_rows_needed,
)
from graphtune.tools.training.self_prompts import sample_user_prompts
from graphtune.tools.training.shared_prefix import mark_examples, template_opening
from graphtune.tools.training.generation import generate_chat_detailed, generate_completions, load_for_inference
from graphtune.tools.training.token_cache import cached_encode_all, token_cache_dir
from graphtune.tools.training.tokenize import ensure_chat_template
from graphtune.tools.training.verdict import verdict

MAX_OOM_RETRIES = 3
MAX_EVAL_EXAMPLES = 256


def default_output_name(cfg: LoraJobConfig, job_id: str) -> str:
    stem = Path(cfg.dataset_name).stem.lower().replace("_", "-")[:40].strip("-.") or "dataset"
    return f"{stem}-{cfg.method}-{job_id[4:12]}"


def _prepare_data(cfg: LoraJobConfig, settings: Any, tokenizer: Any, replay: Callable[[int], ReplaySet] | None = None
                  ) -> dict[str, Any]:
    """Tokenized train/eval examples; `replay(rows)` supplies the general replay conversations."""
    files = locate(settings.datasets_dir, cfg.dataset_name)
    train_conv = read_conversations(files.train)
    eval_conv = read_conversations(files.eval) if files.eval else []
    default_template = ensure_chat_template(tokenizer)
    wanted = replay_rows_needed(len(train_conv), cfg.general_replay)
    replay_set = replay(wanted) if replay and wanted else ReplaySet([])
    replayed = replay_set.conversations
    cache = token_cache_dir(settings)  # a second job on the same data and tokenizer does not tokenize again
    train, train_report = cached_encode_all(tokenizer, train_conv, cfg.max_seq_length, cache)
    if replayed:
        replay_examples, replay_report = cached_encode_all(tokenizer, replayed, cfg.max_seq_length, cache,
                                                           replay=replay_set.takes_kl)
        train, train_report = train + replay_examples, train_report + replay_report
    if len(eval_conv) > MAX_EVAL_EXAMPLES:  # eval loss is a trend line: a seeded sample is enough and keeps CPU runs short
        eval_conv = random.Random(cfg.seed).sample(eval_conv, MAX_EVAL_EXAMPLES)
    evals, _ = cached_encode_all(tokenizer, eval_conv, cfg.max_seq_length, cache)
    if not train:
        raise TrainingConfigError("no training example has answer tokens within `max_seq_length`.",
                                  field="max_seq_length", hint="Raise max_seq_length.")
    # after the cache (the marks depend on the whole training set, not on one conversation); eval stays unshared
    shared = mark_examples(train, template_opening(tokenizer)) if cfg.shared_prefix and cfg.packing else None
    return {"files": files, "train": train, "eval": evals, "report": train_report, "default_template": default_template,
            "shared_prefix": shared,
            "general_replay": {"fraction": cfg.general_replay, "rows": len(replayed), "wanted": wanted,
                               "distinct_prompts": len({c[0]["content"] for c in replayed}),
                               "answers": CHAT_ANSWERS if replay_set.decoding == CHAT_DECODING else PLAIN_TEXT_ANSWERS,
                               "kl_to_base": cfg.general_replay_kl if replay_set.takes_kl else 0.0}}


def _replay_source(cfg: LoraJobConfig, ctx: JobContext, base: str, device: str) -> Callable[[int], ReplaySet]:
    """replay(rows): the base model's cached answers to general prompts; the base model is loaded
    for generation only when some are missing (once per base model). A base without a chat template
    of its own answers as plain text (base_style), from the shipped prompts only: its own user
    prompts (self_prompts) are written in the chat format it does not know."""
    chat = has_own_chat_template(base)

    def replay(rows: int) -> ReplaySet:
        loaded: list[Any] = []

        def model_and_tokenizer() -> list[Any]:
            if not loaded:
                ctx.progress(0, None, "steps", "loading the base model to answer general prompts")
                loaded.extend(load_for_inference(base, None, device, ctx.settings))
            return loaded

        def answer(conversations: list[list[dict[str, str]]]) -> list[Any]:
            model, tokenizer = model_and_tokenizer()
            batch = 512 if device == "cuda" else 16
            if chat:
                return generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=REPLAY_MAX_NEW_TOKENS,
                                              batch_size=batch)
            return generate_completions(model, tokenizer, [COMPLETION_PROMPT.format(prompt=c[-1]["content"])
                                                           for c in conversations],
                                        max_new_tokens=COMPLETION_MAX_NEW_TOKENS, batch_size=batch)

        def sample(count: int, seed: int) -> list[str]:
            model, tokenizer = model_and_tokenizer()
            return sample_user_prompts(model, tokenizer, count, seed=seed, batch_size=256)

        # On a CPU (or MPS) writing and answering ~1,500 more prompts would take hours: shipped prompts only.
        decoding = CHAT_DECODING if chat else COMPLETION_DECODING
        out = replay_conversations(rows, cache=_answer_cache(ctx, base), answer=answer,
                                   sample=sample if device == "cuda" and chat else None,
                                   progress=lambda m: ctx.progress(0, None, "steps", m), decoding=decoding)
        loaded.clear()
        gc.collect()
        return ReplaySet(out, decoding)
    return replay


def _answer_cache(ctx: JobContext, base: str) -> AnswerCache:
    return AnswerCache(Path(ctx.settings.base_models_path) / "answers", base)


def checkpoint_layers(cfg: LoraJobConfig, device: str, shape: dict[str, Any], budget: int,
                      weights_bytes: float | None = None) -> int:
    """How many decoder layers to checkpoint: none unless memory needs it, then just enough (auto)."""
    if cfg.gradient_checkpointing != "auto":
        return shape["layers"] if cfg.gradient_checkpointing == "on" else 0
    if device != "cuda":
        return 0
    import torch
    from graphtune.tools.training.estimate import (
        RESERVE_GIB,
        layers_without_checkpointing,
    )

    free, total = torch.cuda.mem_get_info()
    ceiling = min(cfg.max_memory_gib * 2**30 if cfg.max_memory_gib else 0.9 * total, 0.95 * total)
    if weights_bytes is None:  # the model is loaded: measure it
        in_use, free_now = torch.cuda.memory_allocated(), free
    else:  # dry run: nothing loaded yet
        in_use, free_now = weights_bytes, free - weights_bytes
    available = min(ceiling - in_use, free_now) - RESERVE_GIB * 2**30
    keep = layers_without_checkpointing(shape["layers"], shape["hidden"], budget, available)
    return shape["layers"] - keep


def layers_may_compile(cfg: LoraJobConfig, device: str, shape: dict[str, Any], budget: int, weights_bytes: float,
                       *, single_process: bool) -> bool:
    """Before loading: will the layers be compiled (so Liger's in-layer kernels are left out)? Decided on
    the estimated weights, since nothing is loaded yet; the job and the 8B bench share it (a bench copy
    that measured an empty GPU instead under-counted 15 GiB). Checkpointing itself is decided again on
    the loaded model, and layers compile only when that leaves none checkpointed."""
    return cfg.compile_layers and wants_compiled_layers(  # --no-compile-layers: no second estimate
        cfg, device, single_process=single_process,
        checkpointed_layers=checkpoint_layers(cfg, device, shape, budget, weights_bytes))


def apply_checkpointing(model: Any, n_layers: int) -> None:
    """Checkpoint the first n decoder layers (all when n == total); the rest keep activations."""
    if n_layers <= 0:
        return
    enable_checkpointing(model)
    layers = [m for m in model.modules() if hasattr(m, "gradient_checkpointing") and type(m).__name__.endswith("DecoderLayer")]
    for layer in layers[n_layers:]:
        layer.gradient_checkpointing = False


def _eval_batches(examples: list[Any], cfg: LoraJobConfig, device: str) -> list[list[Any]]:
    from graphtune.tools.training.packing import plan_batches

    budget = engine.default_token_budget(cfg, device)
    lengths = [len(e) for e in examples]
    groups = plan_batches(lengths, max_tokens=max([budget, *lengths]), max_examples=cfg.examples_per_batch, seed=0,
                          shuffle=False) if examples else []
    return [[examples[i] for i in g] for g in groups]


def _dry_run(cfg: LoraJobConfig, device: str, base: str, data: dict[str, Any], plan: engine.Plan,
             world: int = 1, strategy: str = "single") -> dict[str, Any]:
    shape = model_shape(base)
    lora_params = lora_parameter_count(cfg, shape)
    weights = estimate(shape, cfg.method, 0, 0, True, 0, device)["weights_gib"] * 2**30
    ckpt = checkpoint_layers(cfg, device, shape, plan.tokens_per_batch, weights_bytes=weights)
    report = data["report"]
    return {"dry_run": True, "device": device, "train_examples": report.examples, "eval_examples": len(data["eval"]),
            "train_tokens_per_epoch": report.tokens, "answer_tokens_per_epoch": report.label_tokens,
            "truncated_examples": report.truncated, "dropped_examples": report.dropped_no_answer,
            "max_example_tokens": report.max_length, "micro_batches": len(plan.batches), "optimizer_steps": plan.steps,
            "tokens_per_batch": plan.tokens_per_batch, "model_parameters": shape["params"],
            "checkpointed_layers": ckpt, "default_chat_template": data["default_template"],
            "general_replay": data["general_replay"], "shared_prefix": shared_prefix_summary(data, plan),
            "estimate": estimate(shape, cfg.method, lora_params, plan.tokens_per_batch, ckpt > 0, plan.tokens, device),
            "distributed": distributed_plan(cfg, device, shape, lora_params, plan.tokens_per_batch, world, strategy)}


def card_ceiling_gib(cfg: LoraJobConfig) -> float:
    import torch

    total = torch.cuda.get_device_properties(0).total_memory / 2**30
    return min(cfg.max_memory_gib or 0.9 * total, 0.95 * total)


def choose_strategy(cfg: LoraJobConfig, device: str, base: str, world: int) -> str:
    """DDP when weights + activations fit one card (each rank holds the whole model: fastest), FSDP
    (weights sharded over the ranks) when they do not; an explicit choice is kept."""
    if world <= 1:
        return "single"
    strategy = cfg.strategy
    if strategy == "auto":
        strategy = "ddp"
        if device == "cuda":
            shape = model_shape(base)
            need = estimate(shape, cfg.method, lora_parameter_count(cfg, shape),
                            engine.default_token_budget(cfg, device, shape["params"]), True, 0, device)["memory_gib"]
            strategy = "ddp" if need <= card_ceiling_gib(cfg) else "fsdp"
    if strategy == "fsdp" and device != "cuda":
        raise TrainingConfigError(f"`strategy`='fsdp' shards weights over CUDA GPUs; this job runs on {device}.",
                                  field="strategy", hint="Use strategy='ddp' (or 'auto') off CUDA.")
    check_kl_strategy(cfg, strategy)
    return strategy


def distributed_plan(cfg: LoraJobConfig, device: str, shape: dict[str, Any], lora_params: int, budget: int,
                     world: int, strategy: str) -> dict[str, Any]:
    """What a multi-GPU run would do: ranks, strategy, per-GPU memory estimate, global tokens per step."""
    per_gpu = estimate(shape, cfg.method, lora_params, budget, True, 0, device)
    memory = per_gpu["memory_gib"]
    if strategy == "fsdp":  # weights (and LoRA optimizer state) sharded; activations stay per rank
        memory = round(memory - per_gpu["weights_gib"] * 1.15 * (1 - 1 / world), 2)
    accum = cfg.gradient_accumulation_steps * world
    return {"world_size": world, "strategy": strategy, "per_gpu_memory_gib_estimate": memory,
            "micro_batches_per_step": accum, "global_tokens_per_step_max": accum * budget}


class _Run:
    """One training attempt's state, shared with the engine hooks."""

    def __init__(self, ctx: JobContext, device: str, pad_id: int, packing: bool) -> None:
        self.ctx, self.device, self.pad_id, self.packing = ctx, device, pad_id, packing

    def on_metrics(self, metrics: dict[str, Any]) -> None:
        self.ctx.event("metrics", metrics)
        if "loss" in metrics:
            self.ctx.progress(metrics["step"], metrics["max_steps"], "steps", f"loss {metrics['loss']:.4f}",
                              safe_point=False)


def _train(cfg: LoraJobConfig, ctx: JobContext, device: str, base: str, data: dict[str, Any], tokenizer: Any,
           resume: bool, ranks: RankInfo = RankInfo(), strategy: str = "single"
           ) -> tuple[Any, engine.Plan, Any, dict[str, Any]]:
    import torch

    ckpt_dir = ctx.work_dir / "checkpoints"
    state_file = ctx.work_dir / "run_state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    budget, bsz, accum = state.get("budget"), state.get("batch_size"), state.get("grad_accum")
    # a step is grad_accum micro-batches over all ranks, fixed by the first run: a resume on another
    # GPU count replays the same data order (each rank takes every world_size-th micro-batch)
    accum = accum or cfg.gradient_accumulation_steps * ranks.world_size
    shape = model_shape(base)  # reads config.json: once per job, not once per OOM attempt
    for attempt in range(MAX_OOM_RETRIES + 1):
        plan = engine.make_plan(data["train"], cfg, device, budget=budget, batch_size=bsz, grad_accum=accum,
                                model_params=shape["params"])
        state.update(budget=plan.tokens_per_batch, batch_size=plan.batch_size, grad_accum=plan.grad_accum)
        if ranks.is_main:
            write_text_atomic(state_file, json.dumps(state))
        keep_on_cpu = strategy == "fsdp"  # FSDP moves each rank's shard to its GPU (QLoRA: quantized on it)
        model, info = _load_for_training(cfg, ctx, device, base, shape, plan, ranks, keep_on_cpu)
        run = _Run(ctx, device, tokenizer.pad_token_id or 0, cfg.packing)
        eval_batches = _eval_batches(data["eval"], cfg, device)
        evaluate = lambda: engine.evaluate_loss(model, eval_batches, packing=cfg.packing, pad_id=run.pad_id,  # noqa: E731, B023 (used in this iteration only)
                                                device=device)
        if "base_eval_loss" not in state and not keep_on_cpu:  # FSDP: measured after training (sharded model)
            with model.disable_adapter():
                state["base_eval_loss"] = evaluate()
            if ranks.is_main:
                write_text_atomic(state_file, json.dumps(state))
        hooks = engine.Hooks(on_metrics=run.on_metrics, should_stop=ctx.should_stop, on_event=ctx.event,
                             eval_fn=evaluate if eval_batches else None,
                             eval_steps=cfg.eval_steps or max(1, plan.steps // cfg.num_epochs))
        trainer = engine.build_trainer(model, plan, cfg, device, ckpt_dir, run.pad_id, hooks, strategy)
        start_from = engine.newest_checkpoint(ckpt_dir, ctx.event) if resume else None
        if start_from:
            ctx.log(f"resuming from {start_from.name}")
        try:
            train_started = time.perf_counter()
            trainer.train(resume_from_checkpoint=str(start_from) if start_from else None)
            train_seconds = time.perf_counter() - train_started
            engine.release_run_caches(trainer)
        except torch.OutOfMemoryError as exc:
            del trainer, model  # before _smaller_after_oom's gc: this attempt's model must be free to collect
            release_failed_attempt(exc)
            budget, bsz, accum = _smaller_after_oom(exc, cfg, ctx, device, base, data, plan, ranks, attempt)
            shutil.rmtree(ckpt_dir, ignore_errors=True)
            resume = False
            continue
        _finish_info(info, state, model, evaluate, hooks.stats, train_seconds)
        return model, plan, trainer, info
    raise AssertionError("unreachable")


def _load_for_training(cfg: LoraJobConfig, ctx: JobContext, device: str, base: str, shape: dict[str, Any],
                       plan: engine.Plan, ranks: RankInfo, keep_on_cpu: bool) -> tuple[Any, dict[str, Any]]:
    """The model to train (with `init_adapter` when set), its layers checkpointed as the plan needs,
    else compiled where that was measured to pay (compiled_layers). Checkpointing is decided on the
    loaded model's measured memory; whether Liger's in-layer kernels are left out for compiling has
    to be decided before loading, on the estimated weights (the dry run's way)."""
    weights = estimate(shape, cfg.method, 0, 0, True, 0, device)["weights_gib"] * 2**30
    sharded_weights = weights / ranks.world_size if keep_on_cpu else None
    may_compile = layers_may_compile(cfg, device, shape, plan.tokens_per_batch, sharded_weights or weights,
                                     single_process=ranks.world_size == 1)
    model, info = load_model(cfg, device, base, keep_on_cpu=keep_on_cpu, liger_layers=not may_compile) \
        if not cfg.init_adapter else _load_with_adapter(cfg, device, base, ctx, keep_on_cpu=keep_on_cpu,
                                                         liger_layers=not may_compile)
    info["checkpointed_layers"] = checkpoint_layers(cfg, device, shape, plan.tokens_per_batch, sharded_weights)
    apply_checkpointing(model, info["checkpointed_layers"])
    # after the flex_attention check in load_model (its row is another shape) and only without checkpointing
    compile_now = may_compile and info["checkpointed_layers"] == 0
    info["compiled_layers"] = compile_decoder_layers(model) if compile_now else 0
    info["liger"] = model.graphtune_fast_path["liger"]
    return model, info


def release_failed_attempt(exc: BaseException) -> None:
    """Clear the locals of the frames an out-of-memory error unwound (the trainer's, the model's forward:
    the attempt's model, optimizer and activations). The error keeps those frames in its traceback, and
    the retry would load its smaller model while the failed one still held the GPU memory. The traceback
    itself (files, lines) stays for the error reported if the retries run out."""
    traceback.clear_frames(exc.__traceback__)


def _smaller_after_oom(exc: BaseException, cfg: LoraJobConfig, ctx: JobContext, device: str, base: str,
                       data: dict[str, Any], plan: engine.Plan, ranks: RankInfo, attempt: int) -> tuple[int, int, int]:
    """After an out-of-memory error: the next attempt's (tokens per batch, batch size, grad accum),
    half the micro-batch and twice the accumulation, the same tokens per optimizer step; raises
    OutOfMemory under torchrun (no retry in place) and once the retries are spent."""
    import torch

    if ranks.distributed:  # the other ranks wait in a collective: no in-place retry, fail the job
        raise OutOfMemory(f"rank {ranks.rank} ran out of GPU memory at {plan.tokens_per_batch} tokens per "
                          "micro-batch.", field="tokens_per_batch",
                          hint="Lower tokens_per_batch or max_seq_length, use gradient_checkpointing='on', "
                          "or strategy='fsdp' to shard the weights.") from exc
    gc.collect()
    torch.cuda.empty_cache()
    if attempt == MAX_OOM_RETRIES or plan.tokens_per_batch <= 256:
        raise OutOfMemory(f"out of GPU memory even at {plan.tokens_per_batch} tokens per micro-batch "
                          f"(estimate: {_dry_run(cfg, device, base, data, plan)['estimate']}).",
                          hint="Use method='qlora', a smaller max_seq_length or lora_rank, "
                          "or gradient_checkpointing='on'.") from exc
    budget, bsz, accum = plan.tokens_per_batch // 2, max(1, plan.batch_size // 2), plan.grad_accum * 2
    ctx.event("oom_retry", {"tokens_per_batch": budget, "batch_size": bsz, "gradient_accumulation_steps": accum})
    return budget, bsz, accum


def _finish_info(info: dict[str, Any], state: dict[str, Any], model: Any, evaluate: Callable[[], float | None],
                 stats: dict[str, Any], train_seconds: float) -> None:
    """The run's losses (the base's measured now when it was not before), tokens and speed, into `info`."""
    state["final_eval_loss"] = evaluate() if not stats.get("stopped") else None
    if "base_eval_loss" not in state and not stats.get("stopped"):
        with model.disable_adapter():
            state["base_eval_loss"] = evaluate()
    tokens = int(sum_over_ranks(stats.get("tokens_seen", 0)))
    unshared = tokens + int(sum_over_ranks(stats.get("tokens_shared", 0)))
    info.update(tokens_trained=tokens, train_seconds=round(train_seconds, 2),
                tokens_per_second=round(tokens / train_seconds, 1) if train_seconds > 0 and tokens else None,
                tokens_trained_unshared=unshared,
                tokens_per_second_unshared=round(unshared / train_seconds, 1) if train_seconds > 0 and tokens else None,
                base_eval_loss=state.get("base_eval_loss"),
                eval_loss=state["final_eval_loss"], stopped=stats.get("stopped"))


def _gather_adapter(model: Any) -> dict[str, Any]:
    """The trainable (LoRA) weights, whole, from FSDP's shards: every rank takes part (collective);
    only these few tensors are gathered, never the frozen base model."""
    out = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            full = param.full_tensor() if hasattr(param, "full_tensor") else param
            out[name] = full.detach().to("cpu").contiguous()
    return out


def _load_with_adapter(cfg: LoraJobConfig, device: str, base: str, ctx: JobContext, *,
                       keep_on_cpu: bool = False, liger_layers: bool = True) -> tuple[Any, dict[str, Any]]:
    """The base model loaded as for a fresh run (4-bit for QLoRA: the weights the adapter was
    trained against), then the finished adapter `init_adapter` on it, trainable."""
    adapter = str(ctx.settings.models_dir / cfg.init_adapter)
    model, info = load_model(cfg, device, base, keep_on_cpu=keep_on_cpu, init_adapter=adapter,
                             liger_layers=liger_layers)
    return model, {**info, "init_adapter": adapter}


def _evaluate_probes(cfg: LoraJobConfig, ctx: JobContext, model: Any, tokenizer: Any, data: dict[str, Any],
                     device: str, base: str, strategy: str = "single"
                     ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Closed-book probes of a knowledge dataset, base vs tuned, before the model is published."""
    if strategy == "fsdp":  # the model is sharded over the ranks: generation needs it whole on one device
        if cfg.evaluate_probes and data["files"].metadata:
            ctx.log("closed-book probes are not answered under FSDP; run evaluate_model on the saved model")
        return None, []
    probes = read_probes(data["files"].train.parent) if cfg.evaluate_probes and data["files"].metadata else []
    if not probes:
        return None, []
    chosen = select_probes(probes, cfg.max_probes, cfg.seed)
    report, rows = evaluate_knowledge(model, tokenizer, chosen, device, include_base=True,
                                      progress=lambda m: ctx.progress(None, None, "probes", m, safe_point=False),
                                      cache=_answer_cache(ctx, base))
    report["dataset"] = data["files"].name
    ctx.event("evaluation", {k: report[k] for k in ("probes", "base", "tuned", "retention")})
    return report, rows


TOKENS_COUNTED = ("tokens_trained and tokens_per_second count the tokens computed (a shared prefix once per "
                  "packed row); the *_unshared figures count every example's full tokens, as without sharing")


def shared_prefix_summary(data: dict[str, Any], plan: engine.Plan) -> dict[str, Any]:
    """What the run shares: the marks on the training examples (prefix length, marked examples, the
    prefix's share of their tokens), whether the rows use them, and the plan's tokens (all epochs)
    computed with sharing and counted without."""
    marks = data.get("shared_prefix")
    return {"active": plan.shared_prefix > 0, **(marks or {"prefix_tokens": 0, "examples": 0}),
            "planned_tokens": plan.tokens, "planned_tokens_unshared": plan.unshared_tokens}


def _perplexity(loss: float | None) -> float | None:
    return round(math.exp(min(loss, 50)), 4) if loss is not None else None


def run_train_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Job handler registered as kind `train`."""
    started = time.time()
    cfg = LoraJobConfig.from_job(params)
    device = resolve_device(cfg.device, cfg.method)
    ranks = rank_info()
    if ranks.distributed:
        init_process_group(device)
    base = resolve_base_model(cfg.base_model, ctx.settings,
                              progress=lambda message: ctx.progress(0, None, "steps", message))
    world, strategy = _world_and_strategy(cfg, params, ranks, device, base)
    output_name = cfg.output_name or default_output_name(cfg, ctx.job_id)
    final_dir = ctx.settings.models_dir / output_name
    if not cfg.dry_run and final_dir.exists() and not params.get("resume"):
        raise TrainingConfigError(f"a model named `{output_name}` already exists.", field="output_name",
                                  hint="Choose another output_name.")
    if world > 1 and not ranks.distributed and not cfg.dry_run:
        from graphtune.tools.training.launch import run_ranks

        return run_ranks(params, ctx, world, strategy)
    ctx.progress(0, None, "steps", "tokenizing")
    tokenizer = load_tokenizer(base)
    data = _prepare_data(cfg, ctx.settings, tokenizer,
                         replay=None if cfg.dry_run else _replay_source(cfg, ctx, base, device))
    if cfg.dry_run:
        plan = engine.make_plan(data["train"], cfg, device, grad_accum=cfg.gradient_accumulation_steps * world,
                                model_params=model_shape(base)["params"])
        return _dry_run(cfg, device, base, data, plan, world, strategy)
    ctx.progress(0, None, "steps", "loading model")
    model, plan, trainer, info = _train(cfg, ctx, device, base, data, tokenizer, bool(params.get("resume")),
                                        ranks, strategy)
    if info["stopped"]:
        raise JobCancelled("stopped with a checkpoint; resume_fine_tuning continues it",
                           interrupted=info["stopped"] == "interrupt")
    adapter_state = _gather_adapter(model) if strategy == "fsdp" else None
    if adapter_state is not None:
        ctx.event("fsdp", {"sharded_trainable_tensors": sum(1 for _, p in model.named_parameters()
                                                             if p.requires_grad and hasattr(p, "full_tensor")),
                           "adapter_tensors": len(adapter_state)})
    if not ranks.is_main:
        return {"rank": ranks.rank}
    trainable, total = count_params(model)
    knowledge, probe_rows = _evaluate_probes(cfg, ctx, model, tokenizer, data, device, base, strategy)
    info["knowledge"] = knowledge
    meta = _metadata(cfg, ctx, base, data, plan, trainer, info, output_name, started, device, trainable, total)
    sweep_temp(ctx.settings.models_dir)
    with staged_folder(final_dir, overwrite=False, what="model", field="output_name") as tmp:
        model.save_pretrained(tmp, **({"state_dict": adapter_state} if adapter_state is not None else {}))
        tokenizer.save_pretrained(tmp)
        write_metadata(tmp, meta)
        write_loss_plot(trainer.state.log_history, tmp / "loss.png")
        if probe_rows:
            write_probe_answers(tmp / "probe_answers.jsonl", probe_rows)
        ctx.check_cancel()  # last safe point before the model becomes visible
    ctx.register_model({"name": output_name, "job_id": ctx.job_id, "base_model": cfg.base_model,
                        "dataset": meta["dataset"]["name"], "method": cfg.method, "created_at": time.time(),
                        "path": str(final_dir), "metrics": meta["evaluation"] | knowledge_metrics(knowledge)})
    shutil.rmtree(ctx.work_dir / "checkpoints", ignore_errors=True)
    return _train_result(cfg, output_name, str(final_dir), plan, meta, knowledge, device, world)


def _world_and_strategy(cfg: LoraJobConfig, params: dict[str, Any], ranks: RankInfo, device: str,
                        base: str) -> tuple[int, str]:
    """How many GPUs the job trains on and how (a torchrun rank takes what its launcher chose)."""
    if ranks.distributed:
        return ranks.world_size, params["strategy"]
    from graphtune.tools.training.launch import resolve_world_size

    world = resolve_world_size(cfg.gpus, device)
    return world, choose_strategy(cfg, device, base, world)


def _train_result(cfg: LoraJobConfig, output_name: str, path: str, plan: engine.Plan, meta: dict[str, Any],
                  knowledge: dict[str, Any] | None, device: str, world: int) -> dict[str, Any]:
    """The train job's result: the model, its metrics and speed, and the verdict on it."""
    return {"model_name": output_name, "path": path, "steps": plan.steps, **meta["evaluation"],
            "tokens_trained": meta["tokens_trained"], "tokens_per_second": meta["tokens_per_second"],
            "tokens_trained_unshared": meta["tokens_trained_unshared"], "tokens_counted": meta["tokens_counted"],
            "train_seconds": meta["train_seconds"], "duration_seconds": meta["duration_seconds"],
            **({"knowledge": summary_of(knowledge)} if knowledge else {}),
            "final_train_loss": meta["final_train_loss"], "fast_path": meta["fast_path"],
            "measured": measurement(cfg, device, plan.tokens_per_batch, world, meta),
            "verdict": verdict(summary_of(knowledge) if knowledge else None, model=output_name,
                               dataset=cfg.dataset_name, base_model=cfg.base_model)}


def _metadata(cfg: LoraJobConfig, ctx: JobContext, base: str, data: dict[str, Any], plan: engine.Plan, trainer: Any,
              info: dict[str, Any], name: str, started: float, device: str, trainable: int, total: int) -> dict[str, Any]:
    import torch

    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    evals = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h]
    files = data["files"]
    return {
        "name": name, "job_id": ctx.job_id, "graphtune_version": __version__, "base_model": cfg.base_model,
        "base_model_resolved": base, "config": cfg.to_dict(),
        "dataset": {"name": files.name, "path": str(files.train.parent),
                    "graph_fingerprint": (files.metadata.get("source") or {}).get("graph_fingerprint"),
                    "train_examples": len(data["train"]), "eval_examples": len(data["eval"])},
        "general_replay": data["general_replay"], "shared_prefix": shared_prefix_summary(data, plan),
        "steps": plan.steps, "tokens_trained": info["tokens_trained"], "tokens_per_second": info["tokens_per_second"],
        "tokens_trained_unshared": info["tokens_trained_unshared"],
        "tokens_per_second_unshared": info["tokens_per_second_unshared"], "tokens_counted": TOKENS_COUNTED,
        "train_seconds": info["train_seconds"], "trainable_parameters": trainable,
        "total_parameters": total, "final_train_loss": losses[-1] if losses else None,
        "best_eval_loss": min(evals + ([info["eval_loss"]] if info["eval_loss"] is not None else []), default=None),
        "evaluation": {"base_eval_loss": info["base_eval_loss"], "base_perplexity": _perplexity(info["base_eval_loss"]),
                       "eval_loss": info["eval_loss"], "perplexity": _perplexity(info["eval_loss"])},
        "knowledge": info.get("knowledge"),
        "fast_path": {k: info.get(k) for k in ("dtype", "attention", "liger", "checkpointed_layers",
                                                  "compiled_layers")}
        | {"packing": cfg.packing, "tokens_per_batch": plan.tokens_per_batch},
        "duration_seconds": round(time.time() - started, 1),
        "hardware": {"device": device, "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
                     "platform": platform.platform(), "torch": torch.__version__},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
