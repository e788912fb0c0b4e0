"""The model registry: rows in SQLite joined with what is really on disk.

Aliases (`current`, or any slug) live in the SQLite table `model_aliases` (alias -> model
name); every tool that takes a model name resolves an alias first (`resolve_model_name`), so
jobs always record the real name. Lineage is read from each model's training_metadata.json
(parent = `config.init_adapter`, dataset, its graph versions), the record that travels with
the folder; staleness compares those graph versions with the code bases' current ones.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Literal

from graphtune.tools.dataset.names import NAME_PATTERN, named_folder
from graphtune.tools.errors import ConfigError, ModelUnknown
from graphtune.tools.services import JobStoreView
from graphtune.tools.timestamps import iso
from graphtune.tools.training.exports import list_exports
from pydantic import BaseModel


class ExportInfo(BaseModel):
    output_type: str  # q8_0, f16, bf16, q4_k_m ...
    size_bytes: int | None = None
    path: str  # the .gguf file
    modelfile: str | None = None  # the Ollama Modelfile beside it
    created_at: str | None = None


class ModelInfo(BaseModel):
    name: str
    path: str
    base_model: str | None = None
    dataset: str | None = None
    method: str | None = None
    job_id: str | None = None
    created_at: str | None = None  # ISO 8601 UTC, like every other timestamp in replies
    kind: Literal["adapter", "merged"] = "adapter"  # merged: a standalone model folder (merge_adapter)
    merged_from: str | None = None  # a merged model: the adapter folded into its base
    on_disk: bool
    eval_loss: float | None = None
    base_eval_loss: float | None = None
    perplexity: float | None = None
    knowledge_accuracy: float | None = None  # closed-book probes, tuned (knowledge datasets)
    base_knowledge_accuracy: float | None = None
    held_out_families_core: float | None = None  # core fact types asked in question styles never trained on
    general_ability: float | None = None  # held-out everyday questions answered right, tuned (base beside it)
    base_general_ability: float | None = None
    forgetting: bool | None = None  # lost more than 5 points of general ability (None: not measured)
    aliases: list[str] = []
    parent_model: str | None = None  # the model it continued from (init_adapter)
    graph_versions: dict[str, str] | None = None  # code base -> graph version its dataset was built from
    stale: bool | None = None  # trained on an older graph version than a code base's current one (None: unknown)
    entities_changed_since: int | None = None  # entities added, removed or changed since (all its code bases)
    exports: list[ExportInfo] = []  # GGUF exports (export_model), deleted with the model


def read_aliases(settings: Any) -> dict[str, str]:
    """alias -> model name, read-only from the job database (empty before it exists)."""
    path = settings.db_path
    if not path.is_file():
        return {}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return dict(conn.execute("SELECT alias, model_name FROM model_aliases").fetchall())
        finally:
            conn.close()
    except sqlite3.Error:  # before the aliases migration ran
        return {}


def resolve_model_name(settings: Any, name: str) -> str:
    """A model's real name: `name` itself when such a model folder exists, else the model an
    alias of that name points to (else `name`, for model_dir to refuse with a coded error)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        return name  # not a model or alias name: model_dir refuses it with the slug rules
    if (settings.models_dir / name / "adapter_config.json").is_file():
        return name
    return read_aliases(settings).get(name, name)


def model_dir(settings: Any, name: str, field: str = "model_name", *, merged: bool = False) -> Any:
    """The folder of a finished model (an adapter), by name or alias; ModelUnknown otherwise.
    `merged`: a merged model (merge_adapter's full model, no adapter) is taken too, where a tool
    works on any model folder (delete_model); elsewhere one is refused with what to pass instead."""
    real = resolve_model_name(settings, name)
    folder = settings.models_dir / real if isinstance(real, str) and NAME_PATTERN.fullmatch(real) else None
    if folder is not None and not folder.is_symlink() and not (folder / "adapter_config.json").is_file() \
            and (folder / "config.json").is_file():
        if merged:
            return named_folder(settings.models_dir, real, field=field, marker="config.json", missing=ModelUnknown,
                                what="model", list_tool="list_models")
        source = (_merged_from(folder) or "the adapter it was merged from")
        raise ModelUnknown(f"`{real}` is a merged model (the base model with an adapter folded in); `{field}` "
                           "takes a fine-tuned adapter.", field=field,
                           hint=f"Pass {source} instead (list_models shows each merged model's merged_from).")
    return named_folder(settings.models_dir, real, field=field, marker="adapter_config.json", missing=ModelUnknown,
                        what="finished model", list_tool="list_models")


def refuse_alias_name(settings: Any, name: str, field: str = "output_name") -> None:
    """A new model may not take an alias's name: its folder would hide the alias (a name resolves to a
    folder first), so `current` would quietly mean another model."""
    target = read_aliases(settings).get(name)
    if target is not None:
        raise ConfigError(f"`{field}`={name!r} is an alias (it points to `{target}`); a model of that name would "
                          "hide it.", field=field, hint="Choose another name, e.g. "
                          f"'{name}-2', or move the alias first (promote_model).")


def trained_model_dir(settings: Any, name: str, field: str = "model_name") -> Any:
    """model_dir, for a tool that loads the adapter on its base model: its training_metadata.json must
    name that base (an adapter copied in by hand may lack one), checked before a job is queued."""
    folder = model_dir(settings, name, field)
    try:
        meta = read_model_metadata(settings, folder.name)
    except (OSError, ValueError) as exc:
        raise ModelUnknown(f"model `{folder.name}`: its training_metadata.json cannot be read ({exc}).", field=field,
                           hint="Train the model again, or fix or delete that file (list_models).") from exc
    if not isinstance(meta, dict) or not (meta.get("base_model") or meta.get("base_model_resolved")):
        raise ModelUnknown(f"model `{folder.name}` has no training_metadata.json naming its base model, so it "
                           "cannot be loaded.", field=field,
                           hint=f"Use a model trained by graphtune (list_models), or add {folder}/"
                           "training_metadata.json with {\"base_model\": \"<hub id, folder or built-in name>\"}.")
    return folder


def read_merge_metadata(folder: Any) -> dict[str, Any]:
    """A merged model's merge_metadata.json (written by merge_adapter); {} when it is missing or broken,
    so a hand-edited file neither hides the model from list_models nor crashes a tool that names it."""
    try:
        meta = json.loads((folder / "merge_metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _merged_from(folder: Any) -> str | None:
    """The adapter a merged model was made from, as merge_adapter recorded it (None: not recorded)."""
    source = read_merge_metadata(folder).get("merged_from")
    return f"`{source}`" if isinstance(source, str) else None


def read_model_metadata(settings: Any, name: str) -> dict[str, Any]:
    path = model_dir(settings, name) / "training_metadata.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def list_all(store: JobStoreView, settings: Any) -> list[ModelInfo]:
    rows, _ = store.list_models(limit=10_000, offset=0)
    seen, found = set(), []
    for row in rows:
        seen.add(row["name"])
        metrics = row.get("metrics") or {}
        merged = row["method"] == "merged"
        marker = "config.json" if merged else "adapter_config.json"
        found.append(ModelInfo(name=row["name"], path=row["path"], base_model=row["base_model"], dataset=row["dataset"],
                               method=row["method"], job_id=row["job_id"], created_at=iso(row["created_at"]),
                               kind="merged" if merged else "adapter", merged_from=metrics.get("merged_from"),
                               parent_model=metrics.get("merged_from"),
                               on_disk=(settings.models_dir / row["name"] / marker).is_file(),
                               eval_loss=metrics.get("eval_loss"), base_eval_loss=metrics.get("base_eval_loss"),
                               perplexity=metrics.get("perplexity"),
                               knowledge_accuracy=metrics.get("knowledge_accuracy"),
                               base_knowledge_accuracy=metrics.get("base_knowledge_accuracy"),
                               held_out_families_core=metrics.get("held_out_families_core"),
                               general_ability=metrics.get("general_ability"),
                               base_general_ability=metrics.get("base_general_ability"),
                               forgetting=metrics.get("forgetting") if "general_ability" in metrics else None))
    if settings.models_dir.exists():  # adapters copied in by hand still show up
        for folder in sorted(settings.models_dir.iterdir()):
            if folder.name not in seen and not folder.name.startswith(".") and (folder / "adapter_config.json").is_file():
                found.append(ModelInfo(name=folder.name, path=str(folder), on_disk=True,
                                       created_at=iso(folder.stat().st_mtime)))
            elif folder.name not in seen and (folder / "merge_metadata.json").is_file():
                found.append(_merged_on_disk(folder))
    aliases = read_aliases(settings)
    staleness = _Staleness(settings)
    for model in found:
        model.aliases = sorted(a for a, target in aliases.items() if target == model.name)
        if model.on_disk and model.kind == "adapter":
            _add_lineage(model, settings, staleness)
            model.exports = [ExportInfo(**e) for e in list_exports(settings.models_dir / model.name)]
    return sorted(found, key=lambda m: m.created_at or "", reverse=True)


def _merged_on_disk(folder: Any) -> ModelInfo:
    """A merged model folder without a registry row (merged before merges were registered)."""
    meta = read_merge_metadata(folder)
    return ModelInfo(name=folder.name, path=str(folder), on_disk=(folder / "config.json").is_file(), kind="merged",
                     merged_from=meta.get("merged_from"), parent_model=meta.get("merged_from"),
                     base_model=meta.get("base_model"), method="merged", job_id=meta.get("job_id"),
                     created_at=iso(meta.get("created_at") or folder.stat().st_mtime))


class _Staleness:
    """Current graph versions and diff sizes, computed once per listing."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.diffs: dict[tuple[str, str, str, str], int] = {}

    def changed(self, backend: str, codebase: str, old: str) -> tuple[bool | None, int | None]:
        from graphtune.tools.errors import GraphtuneError
        from graphtune.tools.graph.versions import current_version, diff_snapshots, load_snapshot

        try:
            current = current_version(self.settings, backend, codebase)
            if current is None:
                return None, None
            if current == old:
                return False, 0
            key = (backend, codebase, old, current)
            if key not in self.diffs:
                counts = diff_snapshots(load_snapshot(self.settings, backend, codebase, old),
                                        load_snapshot(self.settings, backend, codebase, current))["counts"]
                self.diffs[key] = counts["added"] + counts["removed"] + counts["changed"]
            return True, self.diffs[key]
        except (GraphtuneError, OSError, ValueError):
            return True, None


def _add_lineage(model: ModelInfo, settings: Any, staleness: _Staleness) -> None:
    from graphtune.tools.graph.versions import dataset_versions

    try:
        meta = json.loads((settings.models_dir / model.name / "training_metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    model.parent_model = (meta.get("config") or {}).get("init_adapter")
    dataset = (meta.get("dataset") or {}).get("name")
    try:
        data_meta = json.loads((settings.datasets_dir / dataset / "metadata.json").read_text(encoding="utf-8")) \
            if dataset else {}
    except (OSError, ValueError):
        data_meta = {}
    backend = (data_meta.get("source") or {}).get("backend") or settings.graph_backend
    versions = dataset_versions(data_meta, settings, backend) if data_meta else {}
    if not versions:
        return
    model.graph_versions = versions
    results = [staleness.changed(backend, codebase, old) for codebase, old in sorted(versions.items())]
    known = [stale for stale, _ in results if stale is not None]
    model.stale = any(known) if known else None
    counts = [n for stale, n in results if stale]
    model.entities_changed_since = sum(n for n in counts if n is not None) if model.stale and None not in counts \
        else (0 if model.stale is False else None)
