"""The model registry: rows in SQLite joined with what is really on disk."""

from __future__ import annotations

import json
from typing import Any

from graphtune.tools.dataset.params import named_folder
from graphtune.tools.errors import ModelUnknown
from pydantic import BaseModel


class ModelInfo(BaseModel):
    name: str
    path: str
    base_model: str | None = None
    dataset: str | None = None
    method: str | None = None
    job_id: str | None = None
    created_at: float | None = None
    on_disk: bool
    eval_loss: float | None = None
    base_eval_loss: float | None = None
    perplexity: float | None = None
    knowledge_accuracy: float | None = None  # closed-book probes, tuned (knowledge datasets)
    base_knowledge_accuracy: float | None = None


def model_dir(settings: Any, name: str) -> Any:
    return named_folder(settings.models_dir, name, field="model_name", marker="adapter_config.json",
                        missing=ModelUnknown, what="finished model", list_tool="list_models")


def read_model_metadata(settings: Any, name: str) -> dict[str, Any]:
    path = model_dir(settings, name) / "training_metadata.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def list_all(store: Any, settings: Any) -> list[ModelInfo]:
    rows, _ = store.list_models(limit=10_000, offset=0)
    seen, found = set(), []
    for row in rows:
        seen.add(row["name"])
        metrics = row.get("metrics") or {}
        found.append(ModelInfo(name=row["name"], path=row["path"], base_model=row["base_model"], dataset=row["dataset"],
                               method=row["method"], job_id=row["job_id"], created_at=row["created_at"],
                               on_disk=(settings.models_dir / row["name"] / "adapter_config.json").is_file(),
                               eval_loss=metrics.get("eval_loss"), base_eval_loss=metrics.get("base_eval_loss"),
                               perplexity=metrics.get("perplexity"),
                               knowledge_accuracy=metrics.get("knowledge_accuracy"),
                               base_knowledge_accuracy=metrics.get("base_knowledge_accuracy")))
    if settings.models_dir.exists():  # adapters copied in by hand still show up
        for folder in sorted(settings.models_dir.iterdir()):
            if folder.name not in seen and not folder.name.startswith(".") and (folder / "adapter_config.json").is_file():
                found.append(ModelInfo(name=folder.name, path=str(folder), on_disk=True,
                                       created_at=folder.stat().st_mtime))
    return sorted(found, key=lambda m: m.created_at or 0, reverse=True)
