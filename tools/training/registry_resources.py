"""Model resources (graphtune://models...) — filled in by the training capability."""

from __future__ import annotations

from typing import Any


def register_model_resources(app: Any, services: Any) -> None:
    return None
