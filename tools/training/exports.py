"""Where a model's GGUF exports live and how they are listed (the export job writes them:
graphtune.tools.training.gguf_export). Light: the registry imports it for list_models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["EXPORT_FILE", "export_dir", "list_exports"]

EXPORT_FILE = "export.json"


def export_dir(settings: Any, model_name: str, output_type: str) -> Path:
    return settings.models_dir / model_name / "gguf" / output_type


def list_exports(model_folder: Path) -> list[dict[str, Any]]:
    """The finished exports of one model folder (type, size, paths), by type name."""
    found = []
    for record in sorted((model_folder / "gguf").glob("*/" + EXPORT_FILE)):
        if record.parent.name.startswith("."):
            continue
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if Path(data.get("path", "")).is_file():
            found.append({k: data.get(k) for k in ("output_type", "size_bytes", "path", "modelfile", "created_at")})
    return found
