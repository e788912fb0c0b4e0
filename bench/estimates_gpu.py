"""Issue 22 on a GPU: the dry run's time and memory estimates against what graphtune's engine measures.

For each configuration (random-init Llama shapes built from a config, bf16, no downloads):

1. **formula** (uncalibrated): `calibration.time_and_memory(cfg, "cuda", shape, plan, store=None)`, the call
   `start_fine_tuning(dry_run=true)` makes (tools/training/plan.py), with the shape read from the model's
   config dict (`shape_from_config`) and the plan made from the same example lengths as the worker makes it
   (`engine.make_plan(..., model_params=shape["params"])`). The worker-side estimate (`train_job._dry_run`:
   checkpointing decided from free memory) is reported beside it.
2. **job A** (the earlier comparable run): the model is built, LoRA'd and checked as `load_model` does
   (prepare_model, ensure_attention_works, auto checkpointing), then trained STEPS_A steps through
   `engine.build_trainer(...).train()`, timed exactly like `train_job._train` (`train_seconds`: the whole
   `trainer.train()`); its record is `calibration.measurement(...)`, what a finished job stores.
3. **calibrated**: `time_and_memory(..., store=<a store holding job A>)` for job B's plan: graphtune's own
   path (same base model, device, method, tokens per micro-batch, ranks -> job A's seconds per token and peak).
4. **job B** (the job being planned): STEPS_B steps, measured the same way. Between A and B the trainer is
   freed, peak stats reset and, with RESET=1 (default), `torch._dynamo.reset()` + `ensure_attention_works`
   again: a real next job is a new worker process, so it compiles again (disk caches warm), outside
   `train_seconds` for the start-up check and inside it for the first step's recompile.

Beside it, `predicted_split_calibration` (not graphtune's code): job A's fixed start-up seconds (train_seconds
minus its tokens at its steady rate) plus job B's tokens at A's steady rate; graphtune's one whole-run rate scales
the first step's compile with the token count, which a short job A makes visible.

Measured figures per job: `train_seconds` (what the estimate's "seconds" covers: the training steps, compile
of the first step included) and the steady rate over steps WARM..end (what the formula's sustained FLOP/s
means), and `torch.cuda.max_memory_allocated` (what the memory estimate and `measurement` mean) and reserved.

Env: CONFIGS (default lora-1b,lora-8b,knowledge-135m), STEPS_A (4), STEPS_B (8), WARM (2), RESET (1),
TIME_BUDGET seconds (140: a config is skipped when too little is left), DEVICE (cuda; cpu + CONFIGS=tiny for
a CPU check of the logic), TOKENS_PER_BATCH (unset: graphtune's default for the shape), OUT.

    PYTHONPATH=/tmp/gt:/tmp/site HF_HUB_OFFLINE=1 python3 bench/estimates_gpu.py
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gc  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from graphtune.tools.training import engine  # noqa: E402
from graphtune.tools.training.calibration import _peak_memory_gib, measurement, time_and_memory  # noqa: E402
from graphtune.tools.training.config import LoraJobConfig  # noqa: E402
from graphtune.tools.training.estimate import estimate, lora_parameter_count, shape_from_config  # noqa: E402
from graphtune.tools.training.model_loading import ensure_attention_works, prepare_model  # noqa: E402
from graphtune.tools.training.presets import PRESETS  # noqa: E402
from graphtune.tools.training.tokenize import Example  # noqa: E402
from graphtune.tools.training.train_job import apply_checkpointing, checkpoint_layers  # noqa: E402

T0 = time.perf_counter()
DEVICE = os.environ.get("DEVICE", "cuda")
CUDA = DEVICE == "cuda"
STEPS_A, STEPS_B = int(os.environ.get("STEPS_A", "4")), int(os.environ.get("STEPS_B", "8"))
WARM = int(os.environ.get("WARM", "2"))
RESET = os.environ.get("RESET", "1") == "1"
TIME_BUDGET = float(os.environ.get("TIME_BUDGET", "140"))
OUT = Path(os.environ.get("OUT", "/tmp"))

LLAMA_8B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, tie_word_embeddings=False)
LLAMA_1B = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, tie_word_embeddings=True)
SMOLLM2_135M = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                    num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192, tie_word_embeddings=True)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=1000, max_position_embeddings=2048, tie_word_embeddings=True)
# the knowledge preset's model settings; its general replay (and the KL term on replay rows) needs the
# base model's own answers, which synthetic data has none of: left out here (the estimate ignores it too)
KNOWLEDGE = {k: v for k, v in PRESETS["knowledge"].items() if k not in ("general_replay", "general_replay_kl")}
# name -> (model config, LoraJobConfig settings, seconds this config needs at least on an H200 (time guard))
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any], float]] = {
    "lora-1b": (LLAMA_1B, {}, 35.0),  # engine defaults: LoRA r16 q/k/v/o, auto checkpointing, packing
    "lora-8b": (LLAMA_8B, {}, 45.0),
    "knowledge-135m": (SMOLLM2_135M, KNOWLEDGE, 30.0),  # r64 all-linear, alpha 128, 512-token examples
    "tiny": (TINY, {}, 0.0),  # CPU check of this script's logic
    "tiny-knowledge": (TINY, KNOWLEDGE, 0.0),
}


def llama_config(shape: dict[str, Any]) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(**shape, rope_parameters={"rope_type": "default", "rope_theta": 500000.0})


def samples(tokens: int, vocab: int, max_len: int, seed: int = 0) -> list[Example]:
    """bench/train_throughput.py's distribution (log-normal lengths, median ~330, 48..2048, 40 % prompt),
    cut at max_seq_length as the tokenizer step does, until `tokens` tokens."""
    g = torch.Generator().manual_seed(seed)
    out, total = [], 0
    while total < tokens:
        length = int(torch.exp(torch.randn(1, generator=g) * 0.6 + 5.8).clamp(48, 2048).item())
        length = min(length, max_len)
        ids = torch.randint(100, vocab, (length,), generator=g).tolist()
        cut = int(length * 0.4)
        out.append(Example(ids, [-100] * cut + ids[cut:]))
        total += length
    return out


class _OneJobStore:
    """The job store's `list` as calibration.comparable_run reads it, holding one finished train job."""

    def __init__(self, job_id: str, measured: dict[str, Any]) -> None:
        self.jobs = [SimpleNamespace(id=job_id, result={"measured": measured})]

    def list(self, **_: Any) -> tuple[list[Any], None]:
        return self.jobs, None


def _sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def _free() -> None:
    gc.collect()
    if CUDA:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _gib(x: float) -> float:
    return round(x / 2**30, 2)


def _peak() -> dict[str, float | None]:
    if not CUDA:
        return {"peak_allocated_gib": _peak_memory_gib(DEVICE), "peak_reserved_gib": None}  # worker RSS
    return {"peak_allocated_gib": _gib(torch.cuda.max_memory_allocated()),
            "peak_reserved_gib": _gib(torch.cuda.max_memory_reserved())}


def build_model(shape: dict[str, Any]) -> Any:
    """Random init from the config, straight on the device in its training dtype (as load_model puts it)."""
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if CUDA else torch.float32
    attn = "flex_attention" if CUDA else "sdpa"
    torch.manual_seed(0)
    with torch.device(DEVICE):
        return AutoModelForCausalLM.from_config(llama_config(shape), dtype=dtype, attn_implementation=attn)


def train_job(model: Any, plan: engine.Plan, cfg: LoraJobConfig) -> dict[str, Any]:
    """One job's training as train_job._train runs it: build the trainer, time trainer.train()."""
    marks: list[tuple[int, float, int]] = []

    def on_metrics(m: dict[str, Any]) -> None:
        if "loss" in m:
            _sync()
            marks.append((m["step"], time.perf_counter(), m["tokens_seen"]))

    hooks = engine.Hooks(on_metrics=on_metrics)
    with tempfile.TemporaryDirectory(prefix="gt_est_") as out_dir:
        trainer = engine.build_trainer(model, plan, cfg, DEVICE, Path(out_dir), 0, hooks)
        started = time.perf_counter()
        trainer.train()
        _sync()
        train_seconds = time.perf_counter() - started
        del trainer
    tokens = int(hooks.stats.get("tokens_seen", 0))
    row: dict[str, Any] = {"steps": plan.steps, "tokens": tokens, "plan_tokens": plan.tokens,
                           "train_seconds": round(train_seconds, 3),
                           "tokens_per_s_whole": round(tokens / train_seconds, 1) if train_seconds else None}
    after_warm = [m for m in marks if m[0] >= WARM]
    if len(after_warm) >= 2:
        (s0, t0, k0), (s1, t1, k1) = after_warm[0], after_warm[-1]
        row.update(steady_steps=s1 - s0, steady_step_s=round((t1 - t0) / (s1 - s0), 4),
                   steady_tokens_per_s=round((k1 - k0) / (t1 - t0), 1),
                   first_steps_s=round(t0 - started, 3))  # start of train() to the end of step WARM
    return {**row, **_peak(), "_meta": {"tokens_trained": tokens, "train_seconds": train_seconds}}


def _ratio(predicted: float | None, measured: float | None) -> float | None:
    return round(predicted / measured, 3) if predicted and measured else None


def _factor_ok(ratio: float | None, limit: float) -> bool | None:
    return None if ratio is None else max(ratio, 1 / ratio) <= limit


def run_config(name: str) -> dict[str, Any]:
    model_shape_kwargs, settings, _ = CONFIGS[name]
    _free()
    allocated_before = _gib(torch.cuda.memory_allocated()) if CUDA else None  # ~0: nothing left of earlier configs
    config_dict = llama_config(model_shape_kwargs).to_dict()
    shape = shape_from_config(config_dict)  # what the dry run reads from config.json
    tpb = int(os.environ["TOKENS_PER_BATCH"]) if os.environ.get("TOKENS_PER_BATCH") else None
    common = dict(base_model=f"random-init-{name}", dataset_name="synthetic", device=DEVICE, save_steps=10_000,
                  logging_steps=1, tokens_per_batch=tpb, **settings)
    cfg_a = LoraJobConfig(**common, max_steps=STEPS_A)
    cfg_b = LoraJobConfig(**common, max_steps=STEPS_B)
    budget = engine.default_token_budget(cfg_b, DEVICE, shape["params"])
    data = samples(int(1.3 * (STEPS_A + STEPS_B) * budget) + 4096, shape["vocab"], cfg_b.max_seq_length)
    # job A trains on the first examples, job B on the rest (another dataset of the same kind)
    cut, total = 0, 0
    while total < 1.15 * STEPS_A * budget:
        total, cut = total + len(data[cut]), cut + 1
    data_a, data_b = data[:cut], data[cut:]
    # the dry run's plans: plan.py -> engine.make_plan(lengths, cfg, device, grad_accum=accum*world, model_params=)
    plan_a = engine.make_plan(data_a, cfg_a, DEVICE, grad_accum=cfg_a.gradient_accumulation_steps,
                              model_params=shape["params"])
    plan_b = engine.make_plan(data_b, cfg_b, DEVICE, grad_accum=cfg_b.gradient_accumulation_steps,
                              model_params=shape["params"])
    formula = time_and_memory(cfg_b, DEVICE, shape, plan_b, None, 1)
    # the worker's own dry-run estimate (train_job._dry_run): checkpointing from free memory before loading
    lora_params = lora_parameter_count(cfg_b, shape)
    weights = estimate(shape, cfg_b.method, 0, 0, True, 0, DEVICE)["weights_gib"] * 2**30
    ckpt_dry = checkpoint_layers(cfg_b, DEVICE, shape, plan_b.tokens_per_batch, weights_bytes=weights)
    worker_estimate = estimate(shape, cfg_b.method, lora_params, plan_b.tokens_per_batch, ckpt_dry > 0, plan_b.tokens,
                               DEVICE)

    # job A: load (build + LoRA + attention check + auto checkpointing), train, store its measurement
    started_a = time.perf_counter()
    model = prepare_model(build_model(model_shape_kwargs), cfg_a, DEVICE)
    attention = ensure_attention_works(model, DEVICE, shape["vocab"])
    ckpt = checkpoint_layers(cfg_a, DEVICE, shape, plan_a.tokens_per_batch)
    apply_checkpointing(model, ckpt)
    load_seconds = time.perf_counter() - started_a
    job_a = train_job(model, plan_a, cfg_a)
    meta_a = {**job_a.pop("_meta"), "duration_seconds": time.perf_counter() - started_a}
    measured_a = measurement(cfg_a, DEVICE, plan_a.tokens_per_batch, 1, meta_a)
    calibrated = time_and_memory(cfg_b, DEVICE, shape, plan_b, _OneJobStore("job-a", measured_a), 1)

    # job B: what a next job in a new worker process would do (compile again), then train and measure
    _free()
    if RESET:
        torch._dynamo.reset()
        ensure_attention_works(model, DEVICE, shape["vocab"])
    job_b = train_job(model, plan_b, cfg_b)
    job_b.pop("_meta")
    liger = model.graphtune_fast_path["liger"]
    if job_b.get("steady_tokens_per_s"):
        job_b["steady_seconds_for_plan"] = round(plan_b.tokens / job_b["steady_tokens_per_s"], 3)
    del model
    _free()
    if CUDA and torch.cuda.memory_allocated() > 2**28:  # compiled graphs can keep the model alive: drop them,
        torch._dynamo.reset()  # or the next config's peak would count this one's weights
        _free()

    # not graphtune's code (yet): a calibration that stores job A's fixed start-up cost (first-step compile)
    # apart from its steady per-token rate, instead of one rate over the whole train() that scales both
    split = None
    if job_a.get("steady_tokens_per_s"):
        fixed = max(0.0, job_a["train_seconds"] - job_a["tokens"] / job_a["steady_tokens_per_s"])
        split = {"seconds": round(fixed + plan_b.tokens / job_a["steady_tokens_per_s"], 3),
                 "fixed_seconds_of_job_a": round(fixed, 3)}

    f_s, c_s = formula["seconds"]["expected"], calibrated["seconds"]["expected"]
    f_m, c_m = formula["memory_gib"]["expected"], calibrated["memory_gib"]["expected"]
    ratios = {  # predicted / measured (job B)
        "formula_seconds": _ratio(f_s, job_b["train_seconds"]),
        "formula_seconds_vs_steady": _ratio(f_s, job_b.get("steady_seconds_for_plan")),
        "formula_memory": _ratio(f_m, job_b["peak_allocated_gib"]),
        "worker_estimate_memory": _ratio(worker_estimate["memory_gib"], job_b["peak_allocated_gib"]),
        "calibrated_seconds": _ratio(c_s, job_b["train_seconds"]),
        "calibrated_memory": _ratio(c_m, job_b["peak_allocated_gib"]),
        "split_calibration_seconds": _ratio(split and split["seconds"], job_b["train_seconds"]),
    }
    goals = {"formula_within_3x": all(_factor_ok(ratios[k], 3.0) for k in ("formula_seconds", "formula_memory")),
             "calibrated_within_1_5x": all(_factor_ok(ratios[k], 1.5)
                                           for k in ("calibrated_seconds", "calibrated_memory"))}
    return {
        "config": name, "device": torch.cuda.get_device_name(0) if CUDA else DEVICE,
        "shape": shape, "method": cfg_b.method, "lora_rank": cfg_b.lora_rank, "target_modules": cfg_b.target_modules,
        "lora_params_estimated": lora_params, "tokens_per_batch": plan_b.tokens_per_batch,
        "checkpointed_layers": f"{ckpt}/{shape['layers']}", "checkpointed_layers_dry_run": ckpt_dry,
        "attention": attention, "liger": liger,
        "predicted_formula": {k: formula[k] for k in ("seconds", "memory_gib", "basis")},
        "predicted_worker_estimate": {k: worker_estimate[k] for k in ("seconds", "memory_gib", "activations_gib")},
        "predicted_calibrated": {k: calibrated[k] for k in ("seconds", "memory_gib", "basis")},
        "predicted_split_calibration": split,
        "job_a": {**job_a, "load_seconds": round(load_seconds, 2), "measured_record": measured_a},
        "job_b": job_b, "ratios_predicted_over_measured": ratios, **goals,
        "allocated_before_gib": allocated_before, "wall_s_so_far": round(time.perf_counter() - T0, 1),
    }


def main() -> None:
    import transformers

    names = os.environ.get("CONFIGS", "tiny" if not CUDA else "lora-1b,lora-8b,knowledge-135m").split(",")
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__,
                      "device": torch.cuda.get_device_name(0) if CUDA else DEVICE, "configs": names,
                      "steps_a": STEPS_A, "steps_b": STEPS_B, "warm": WARM, "reset": RESET,
                      "import_s": round(time.perf_counter() - T0, 1)}), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "estimates_gpu.jsonl"
    path.write_text("")
    for name in names:
        left = TIME_BUDGET - (time.perf_counter() - T0)
        if left < CONFIGS[name][2]:
            row: dict[str, Any] = {"config": name, "skipped": f"time budget: {left:.0f} s left of {TIME_BUDGET:.0f}"}
        else:
            try:
                row = run_config(name)
            except Exception as exc:  # one failing config must not hide the rest
                import traceback

                traceback.print_exc()
                row = {"config": name, "error": repr(exc)[:400]}
                _free()
        print(json.dumps(row), flush=True)
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")
    print(json.dumps({"total_wall_s": round(time.perf_counter() - T0, 1)}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
