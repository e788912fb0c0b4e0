"""CLI subcommands for training (train, resume, models) — filled in by the training capability."""

from __future__ import annotations

from typing import Any


def add_training_commands(sub: Any, start: Any, wait_flag: Any) -> None:
    return None
