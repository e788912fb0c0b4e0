"""Time and memory of a planned training run, as ranges an agent can plan with.

The formula (graphtune.tools.training.estimate) is a guess from FLOPs and bytes; its range is wide.
"""

from __future__ import annotations

from typing import Any

from graphtune.tools.training.config import LoraJobConfig
from graphtune.tools.training.estimate import estimate, lora_parameter_count

__all__ = ["time_and_memory"]

FORMULA_RANGE = (0.5, 2.0)  # the formula alone: measured runs fell within 3x of it (bench/RESULTS.md)


def _range(expected: float, low: float, high: float, digits: int = 1) -> dict[str, float]:
    return {"low": round(expected * low, digits), "expected": round(expected, digits),
            "high": round(expected * high, digits)}


def time_and_memory(cfg: LoraJobConfig, device: str, shape: dict[str, Any], plan: Any, store: Any = None,
                    world: int = 1) -> dict[str, Any]:
    """Training seconds and peak memory (GiB) as {low, expected, high}, and what they rest on."""
    checkpointing = cfg.gradient_checkpointing == "on"
    formula = estimate(shape, cfg.method, lora_parameter_count(cfg, shape), plan.tokens_per_batch, checkpointing,
                       plan.tokens, device)
    seconds = formula["seconds"] / max(1, world)
    return {"seconds": _range(seconds, *FORMULA_RANGE, 2), "memory_gib": _range(formula["memory_gib"], 0.7, 1.5, 2),
            "memory_kind": "GPU memory per GPU" if device == "cuda" else "resident memory (RSS) of the worker",
            "basis": "formula (no comparable finished run here yet): FLOPs and bytes of the model shape",
            "covers": "the training steps only; loading the model and answering probes come on top"}
