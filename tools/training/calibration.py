"""Time and memory of a planned training run, as ranges an agent can plan with.

Two sources, best first:

1. **The last comparable run here.** Every finished training job stores what it measured
   (`result.measured`: seconds per trained token, peak memory, the time outside the training
   steps) with the keys that decide them: base model, device, method, tokens per micro-batch and
   ranks. A plan with the same keys scales that rate to its own token count; its range is tight.
2. **The formula** (graphtune.tools.training.estimate): FLOPs and bytes of the model shape, with
   sustained rates fitted to the runs in bench/RESULTS.md; its range is wide.
"""

from __future__ import annotations

from typing import Any

from graphtune.tools.training.compiled_layers import wants_compiled_layers
from graphtune.tools.training.config import LoraJobConfig
from graphtune.tools.training.estimate import estimate, lora_parameter_count

__all__ = ["comparable_run", "measurement", "time_and_memory"]

# the fitted formula vs measured CPU runs: 0.74x-1.3x on a quiet machine (estimate.SUSTAINED_FLOPS), 2.5x
# with the 2 cores shared under load 4-6 (bench/RESULTS.md, 2026-12-02): the high end allows for that
FORMULA_RANGE = (0.5, 3.0)
CALIBRATED_RANGE = (0.8, 1.25)  # the same shape measured here: step times vary with load and sequence mix
MEMORY_FORMULA_RANGE = (0.7, 1.5)
MEMORY_CALIBRATED_RANGE = (0.9, 1.15)
RECENT_JOBS = 50  # finished training jobs searched for a comparable run


def _range(expected: float, low: float, high: float, digits: int = 2) -> dict[str, float]:
    return {"low": round(expected * low, digits), "expected": round(expected, digits),
            "high": round(expected * high, digits)}


# measurements stored before a key existed: what those runs did (every run before compile_layers was eager,
# and every run before shared_prefix computed each example's whole opening)
KEY_DEFAULTS: dict[str, Any] = {"compiled_layers": False, "shared_prefix": False}


def _key(cfg: LoraJobConfig, device: str, tokens_per_batch: int, world: int, compiled: bool) -> dict[str, Any]:
    """What decides a run's speed and memory. Compiled layers step 1.36x faster on a 135M model and
    hold less memory, so a plan is calibrated only by runs that compiled as it will; a shared prefix
    computes fewer tokens per example (~22 % fewer on the `email` dataset), so likewise."""
    return {"base_model": cfg.base_model, "device": device, "method": cfg.method,
            "tokens_per_batch": tokens_per_batch, "world_size": world, "compiled_layers": compiled,
            "shared_prefix": cfg.shared_prefix and cfg.packing}


def _plan_compiles(cfg: LoraJobConfig, device: str, world: int) -> bool:
    """Whether the planned run will compile its layers. Automatic checkpointing is decided on the
    loaded model's memory, so a plan counts it only when it is switched on outright."""
    checkpointed = 1 if cfg.gradient_checkpointing == "on" else 0
    return wants_compiled_layers(cfg, device, single_process=world == 1, checkpointed_layers=checkpointed)


def measurement(cfg: LoraJobConfig, device: str, tokens_per_batch: int, world: int, meta: dict[str, Any]
                ) -> dict[str, Any]:
    """What a finished run measured, stored in its result for later plans (called by the train job).
    Seconds per token are per unshared token, every example's full tokens: a sharing run steps
    through the same rows as the unshared plan (engine.make_plan), and the server's dry run counts
    those tokens (it tokenizes without the chat template, so it knows no shared prefix). A sharing run
    is faster per unshared token; the `shared_prefix` key keeps the two rates apart."""
    tokens = meta.get("tokens_trained_unshared") or meta.get("tokens_trained") or 0
    seconds = meta.get("train_seconds") or 0
    compiled = bool((meta.get("fast_path") or {}).get("compiled_layers"))
    return {**_key(cfg, device, tokens_per_batch, world, compiled),
            "seconds_per_token": seconds / tokens if tokens and seconds else None,
            "outside_training_seconds": round(max(0.0, (meta.get("duration_seconds") or 0) - seconds), 1),
            "peak_memory_gib": _peak_memory_gib(device),
            "memory_kind": "GPU memory (max allocated)" if device == "cuda" else "worker RSS (max resident)"}


def _peak_memory_gib(device: str) -> float | None:
    if device == "cuda":
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**30, 2)
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (2**30 if sys.platform == "darwin" else 2**20), 2)  # bytes on macOS, KiB on Linux
    except (ImportError, OSError):
        return None


def comparable_run(store: Any, key: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(job id, measurement) of the newest finished training job with the same keys, if any."""
    if store is None:
        return None
    jobs, _ = store.list(kind="train", status="succeeded", limit=RECENT_JOBS)
    for job in jobs:
        measured = (job.result or {}).get("measured") or {}
        if measured.get("seconds_per_token") and all(measured.get(k, KEY_DEFAULTS.get(k)) == v for k, v in key.items()):
            return job.id, measured
    return None


def time_and_memory(cfg: LoraJobConfig, device: str, shape: dict[str, Any], plan: Any, store: Any = None,
                    world: int = 1) -> dict[str, Any]:
    """Training seconds and peak memory (GiB) as {low, expected, high}, and what they rest on."""
    kind = "GPU memory per GPU" if device == "cuda" else "resident memory (RSS) of the worker"
    found = comparable_run(store, _key(cfg, device, plan.tokens_per_batch, world, _plan_compiles(cfg, device, world)))
    if found:
        job_id, measured = found
        seconds = (getattr(plan, "unshared_tokens", 0) or plan.tokens) * measured["seconds_per_token"]
        out = {"seconds": _range(seconds, *CALIBRATED_RANGE),
               "job_seconds": _range(seconds + measured.get("outside_training_seconds", 0), *CALIBRATED_RANGE),
               "basis": f"calibrated: measured rate of job {job_id} (same base model, device, method, "
                        f"{plan.tokens_per_batch} tokens per micro-batch, {world} rank(s))",
               "memory_kind": kind}
        peak = measured.get("peak_memory_gib")
        out["memory_gib"] = _range(peak, *MEMORY_CALIBRATED_RANGE) if peak else _formula(cfg, device, shape, plan,
                                                                                            world)["memory_gib"]
        return {**out, "covers": "seconds: the training steps; job_seconds: the whole job as that run took "
                "(loading, evaluation, probes)"}
    return {**_formula(cfg, device, shape, plan, world), "memory_kind": kind,
            "basis": "formula: FLOPs and bytes of the model shape (no finished run here with the same base model, "
                     "device, method and batch shape yet; one calibrates the next plan)",
            "covers": "the training steps only; loading the model and answering probes come on top"}


def _formula(cfg: LoraJobConfig, device: str, shape: dict[str, Any], plan: Any, world: int) -> dict[str, Any]:
    checkpointing = cfg.gradient_checkpointing == "on"
    figures = estimate(shape, cfg.method, lora_parameter_count(cfg, shape), plan.tokens_per_batch, checkpointing,
                       plan.tokens, device)
    return {"seconds": _range(figures["seconds"] / max(1, world), *FORMULA_RANGE),
            "memory_gib": _range(figures["memory_gib"], *MEMORY_FORMULA_RANGE)}
