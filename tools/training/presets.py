"""Training presets: defaults chosen by measurement for a kind of dataset.

A preset fills only the settings the caller left out; anything passed explicitly wins.
`auto` picks `knowledge` for knowledge datasets (metadata objective) and `default` otherwise.
The knowledge preset's numbers come from the closed-book benchmark (bench/RESULTS.md,
"Knowledge"): facts live in the MLP layers (all-linear), need capacity (rank 64), many
exposures (epochs) and enough update size per step (alpha 128, lr 1e-3: on a GPU a small
model's long packed micro-batches give few optimizer steps).
"""

from __future__ import annotations

from typing import Any

from graphtune.tools.errors import TrainingConfigError

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # Measured on SmolLM2-135M-Instruct x stdlib `email` (bench/RESULTS.md, "Knowledge"): alpha 128 + lr 1e-3
    # reached 98.5 % on the four core fact types in 104 s of training; alpha 64 + lr 5e-4 only 82.5 % at the
    # same step count (210 steps of 49k tokens); smaller micro-batches (more steps) also work but train 2x longer.
    "knowledge": {"target_modules": "all-linear", "lora_rank": 64, "lora_alpha": 128.0, "learning_rate": 1e-3,
                  "num_epochs": 10, "warmup": 0.03, "max_seq_length": 512, "general_replay": 0.2},
}
PRESET_NAMES = ("auto", *PRESETS)


def apply_preset(params: dict[str, Any], dataset_objective: str | None) -> dict[str, Any]:
    """`params` with the preset's values for every setting not given; `preset` resolved to a name."""
    requested = params.get("preset") or "auto"
    if requested not in PRESET_NAMES:
        raise TrainingConfigError(f"`preset`={requested!r} is not a preset.", field="preset",
                                  hint=f"Use one of {list(PRESET_NAMES)}.")
    name = requested if requested != "auto" else ("knowledge" if dataset_objective == "knowledge" else "default")
    given = {k: v for k, v in params.items() if v is not None}
    return {**PRESETS[name], **given, "preset": name}
