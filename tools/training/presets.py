"""Training presets: defaults chosen by measurement for a kind of dataset.

A preset fills only the settings the caller left out; anything passed explicitly wins.
`auto` picks `knowledge` for knowledge datasets (metadata objective) and `default` otherwise.
The knowledge preset's numbers come from the closed-book benchmark (bench/RESULTS.md,
"Knowledge"): facts live in the MLP layers (all-linear), need capacity (rank 64), many
exposures (epochs) and enough update size per step (alpha 128, lr 2e-3: on a GPU a small
model's long packed micro-batches give few optimizer steps; a larger step needs fewer epochs).
It stays an assistant through the base model's own answers to general prompts replayed beside
the facts (`general_replay`) and a KL-to-base term on those answers (`general_replay_kl`).
"""

from __future__ import annotations

from typing import Any

from graphtune.tools.errors import TrainingConfigError

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # Measured on SmolLM2-135M-Instruct x stdlib `email` (bench/RESULTS.md, "Knowledge"): alpha 128 + lr 1e-3
    # reached 98.5 % on the four core fact types in 104 s of training; alpha 64 + lr 5e-4 only 82.5 % at the
    # same step count (210 steps of 49k tokens); smaller micro-batches (more steps) also work but train 2x longer.
    # 2026-12-04, one H200, two seeds each: 6 epochs at lr 2e-3 met every knowledge goal with 60 % of the tokens
    # of 10 epochs at 1e-3 (training 60-63 s vs 87.5 s; held-out templates core 95.2 / 97.3 %, families core
    # 95.3 / 92.6 %, general ability +3.3 / -2.2 points); 5 epochs at 1e-3 fell to 88.4 % templates core.
    "knowledge": {"target_modules": "all-linear", "lora_rank": 64, "lora_alpha": 128.0, "learning_rate": 2e-3,
                  "num_epochs": 6, "warmup": 0.03, "max_seq_length": 512, "general_replay": 0.2,
                  # 2026-12-03, one H200 (bench/RESULTS.md, issue 18): KL 1.0 on the replayed answers kept general
                  # ability at base - 2.8 points (replay alone: - 10.5) and retention loss at +7 % (+117 %), held-out
                  # families core 91.9 %; 0.3 replay + KL 1.0 kept - 0.5 points at -1.3 templates core, 1.6x training.
                  "general_replay_kl": 1.0},
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
