"""Every setting a training job will use, and where its value came from.

An agent planning a run must see what will run: `preset=auto` on a knowledge dataset trains rank
64, alpha 128, lr 1e-3, all-linear, 512 tokens, which the schema's plain defaults do not say (issue
22). Each setting is reported as `{"value": ..., "source": ...}` with source `given` (the caller
passed it), `preset <name>` (the preset filled it), `default` (LoraJobConfig's default) or
`derived: <how>` (left open in the config and fixed when the job runs: token budget, batch size,
evaluation interval, ranks).
"""

from __future__ import annotations

from typing import Any

from graphtune.tools.training.config import LoraJobConfig
from graphtune.tools.training.presets import PRESETS

__all__ = ["SKIPPED", "resolved_settings"]

SKIPPED = frozenset({"dataset_name", "base_model", "dry_run"})  # reported elsewhere in the plan


def _source(name: str, given: dict[str, Any], preset: str) -> str:
    if name in given:
        return "given"
    if name in PRESETS.get(preset, {}):
        return f"preset {preset}"
    return "default"


def resolved_settings(cfg: LoraJobConfig, given: dict[str, Any], derived: dict[str, tuple[Any, str]]
                      ) -> dict[str, dict[str, Any]]:
    """`{setting: {"value", "source"}}` for every config field; `derived` fills the ones the job
    resolves at run time (name -> (value, how))."""
    out: dict[str, dict[str, Any]] = {}
    for name in type(cfg).model_fields:
        if name in SKIPPED:
            continue
        value = getattr(cfg, name)
        source = _source(name, given, cfg.preset)
        if name == "preset":
            source = "given" if given.get("preset") not in (None, "auto") else "derived: auto picks it from the " \
                "dataset's objective"
        if name in derived and name not in given and (value is None or value == "auto"):
            value, how = derived[name]
            source = f"derived: {how}"
        out[name] = {"value": value, "source": source}
    return out
