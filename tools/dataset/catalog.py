"""Datasets on disk: list them, read their metadata, preview records, resolve a name to files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graphtune.tools.dataset.names import named_folder
from graphtune.tools.errors import ConfigError, DatasetInvalid, DatasetNotFound
from pydantic import BaseModel, Field


class DatasetInfo(BaseModel):
    name: str
    path: str
    created_at: str | None = None
    format: str | None = None
    train_examples: int | None = None
    eval_examples: int | None = None
    records_selected: int | None = None
    graph_fingerprint: str | None = None
    # which datasets evaluate_model / compare_models / retrain can use, without a preview per dataset
    objective: str | None = Field(None, description="skills or knowledge (null: a hand-made dataset).")
    probes: int | None = Field(None, description="Closed-book probes (knowledge datasets); null when none.")
    problem: str | None = Field(None, description="Why the dataset cannot be used as it is (a broken metadata.json); "
                                "null when none.")


def dataset_dir(settings: Any, name: str) -> Path:
    return named_folder(settings.datasets_dir, name, field="dataset_name", marker="metadata.json",
                        missing=DatasetNotFound, what="dataset", list_tool="list_datasets")


def read_metadata(settings: Any, name: str, field: str = "dataset_name") -> dict[str, Any]:
    """A dataset's metadata.json; a broken one is a coded error naming `field` (the argument that named it)."""
    return parse_metadata(dataset_dir(settings, name) / "metadata.json", name, field)


def parse_metadata(path: Path, dataset: str, field: str = "dataset_name") -> dict[str, Any]:
    """metadata.json's object, or DatasetInvalid: the one reader every tool uses, so a hand-edited or
    truncated file is reported the same way everywhere instead of crashing the tool that read it."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetInvalid(f"dataset `{dataset}`: {path} is not valid JSON ({exc}).", field=field,
                             hint="Extract the dataset again (extract_training_data with overwrite=true), or fix "
                             "or delete its metadata.json.") from exc
    if not isinstance(meta, dict):
        raise DatasetInvalid(f"dataset `{dataset}`: {path} holds {type(meta).__name__}, not a JSON object.",
                             field=field, hint="Extract the dataset again, or delete its metadata.json.")
    return meta


def _typed(meta: dict[str, Any]) -> dict[str, Any]:
    """The listing's fields from metadata; a hand-edited value of another type reads as unknown rather
    than failing the whole listing."""
    def value(raw: Any, kind: type) -> Any:
        return raw if isinstance(raw, kind) and not isinstance(raw, bool) else None

    config, source = meta.get("config"), meta.get("source")
    objective = meta.get("objective") or (config.get("objective") if isinstance(config, dict) else None)
    fingerprint = source.get("graph_fingerprint") if isinstance(source, dict) else None
    return {"created_at": value(meta.get("created_at"), str), "format": value(meta.get("format"), str),
            **{key: value(meta.get(key), int) for key in ("train_examples", "eval_examples", "records_selected",
                                                           "probes")},
            "graph_fingerprint": value(fingerprint, str), "objective": value(objective, str)}


def list_datasets(settings: Any) -> list[DatasetInfo]:
    """Every dataset folder, newest first. One whose metadata.json is broken is listed with its `problem`
    (not left out): an agent that cannot see a dataset it made would extract it again under another name."""
    found = []
    if not settings.datasets_dir.exists():
        return found
    for folder in settings.datasets_dir.iterdir():
        meta_file = folder / "metadata.json"
        if folder.name.startswith(".") or folder.is_symlink() or not meta_file.is_file():
            continue
        try:
            fields = _typed(parse_metadata(meta_file, folder.name))
        except (DatasetInvalid, OSError) as exc:
            problem = f"{exc.message} {exc.hint}" if isinstance(exc, DatasetInvalid) else f"metadata.json cannot be read ({exc})."
            found.append(DatasetInfo(name=folder.name, path=str(folder), problem=problem))
            continue
        found.append(DatasetInfo(name=folder.name, path=str(folder), **fields))
    return sorted(found, key=lambda d: d.created_at or "", reverse=True)


def preview(settings: Any, name: str, split: str, offset: int, limit: int, max_chars: int = 1500) -> tuple[list[dict[str, Any]], int]:
    """Records offset..offset+limit of a split, long strings clipped to max_chars; returns (rows, total)."""
    if split not in ("train", "eval"):
        raise ConfigError(f"`split`={split!r} must be 'train' or 'eval'.", field="split")
    path = dataset_dir(settings, name) / f"{split}.jsonl"
    if not path.is_file():
        hint = "Preview split='train'." if split == "eval" else "Extract it again (extract_training_data, overwrite=true)."
        raise DatasetInvalid(f"dataset `{name}` has no {split} split ({path.name} is missing).", field="split"
                             if split == "eval" else "dataset_name", hint=hint)
    rows, total = [], 0
    try:
        with open(path, encoding="utf-8") as handle:
            for i, line in enumerate(handle):
                total += 1
                if offset <= i < offset + limit:
                    rows.append(_clip(_record(json.loads(line)), max_chars))
    except OSError as exc:
        raise DatasetInvalid(f"dataset `{name}`: cannot read {path} ({exc.strerror}).", field="dataset_name",
                             hint="Check the file's permissions, or extract the dataset again.") from exc
    except UnicodeDecodeError as exc:  # raised while reading, before the line is counted
        raise DatasetInvalid(f"dataset `{name}`: {path.name} is not UTF-8 text after line {total}.",
                             field="dataset_name", hint="Extract the dataset again (extract_training_data, "
                             "overwrite=true).") from exc
    except ValueError as exc:  # bad JSON, or a JSON value that is no record (_record)
        raise DatasetInvalid(f"dataset `{name}`: line {total} of {path.name} is not a JSON object ({exc}).",
                             field="dataset_name", hint="Extract the dataset again (extract_training_data, "
                             "overwrite=true), or fix that line.") from exc
    return rows, total


def _record(value: Any) -> dict[str, Any]:
    """A parsed line as a record: a list or a string on a line is a broken dataset, reported as such,
    not a reply that fails the tool's output model (which named `records` and said 'pass a valid value')."""
    if not isinstance(value, dict):
        raise ValueError(f"it holds a JSON {type(value).__name__}")
    return value


def _clip(value: Any, max_chars: int) -> Any:
    if isinstance(value, str) and len(value) > max_chars:
        return value[:max_chars] + f"... [{len(value) - max_chars} more chars]"
    if isinstance(value, dict):
        return {k: _clip(v, max_chars) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v, max_chars) for v in value]
    return value
