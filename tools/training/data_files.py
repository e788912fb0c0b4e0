"""Find and validate a training dataset: a graphtune dataset name, or a JSONL path.

Validation reads every line and reports problems with their line numbers before anything
is queued or trained: bad JSON, unknown shape, wrong roles, empty content, huge lines,
wrong encoding. Accepted shapes: chat (`{"messages": [{"role", "content"}...]}`) and alpaca
(`{"instruction", "input"?, "output"}`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphtune.tools.dataset.catalog import parse_metadata
from graphtune.tools.errors import DatasetInvalid, DatasetNotFound, os_reason, shown

ROLES = {"system", "user", "assistant"}
MAX_LINE_BYTES = 4_000_000
MAX_REPORTED = 10


@dataclass
class DatasetFiles:
    name: str
    train: Path
    eval: Path | None
    metadata: dict[str, Any]


def locate(datasets_dir: Path, dataset: str) -> DatasetFiles:
    """A graphtune dataset folder by name, or a .jsonl file path (its eval split: none)."""
    try:
        return _locate(datasets_dir, dataset)
    except (OSError, RuntimeError) as exc:  # a name too long for the file system, an unknown ~user, no access
        raise DatasetNotFound(f"`dataset_name`={shown(dataset)} cannot be read ({os_reason(exc)}).", field="dataset_name",
                              hint="Call list_datasets, or pass the path of a readable chat/alpaca JSONL file.") from exc


def _locate(datasets_dir: Path, dataset: str) -> DatasetFiles:
    folder = datasets_dir / dataset
    if "/" not in dataset and not dataset.endswith(".jsonl") and (folder / "train.jsonl").is_file() \
            and not folder.is_symlink():
        meta_path = folder / "metadata.json"
        meta = _metadata(meta_path, dataset)
        eval_path = folder / "eval.jsonl"
        has_eval = eval_path.is_file() and eval_path.stat().st_size > 0
        return DatasetFiles(dataset, folder / "train.jsonl", eval_path if has_eval else None, meta)
    path = Path(dataset).expanduser()
    if path.suffix == ".jsonl" and path.is_file():
        return DatasetFiles(path.stem, path.resolve(), None, {})
    raise DatasetNotFound(f"`dataset_name`={dataset!r} is neither a dataset in {datasets_dir} nor a .jsonl file.",
                          field="dataset_name", hint="Call list_datasets, or pass the path of a chat/alpaca JSONL file.")


def _metadata(path: Path, dataset: str) -> dict[str, Any]:
    """The dataset's metadata.json ({} when there is none); a broken one is a dataset error, not a crash."""
    return parse_metadata(path, dataset) if path.is_file() else {}


def to_messages(row: Any) -> list[dict[str, str]] | str:
    """The row as chat messages, or a string saying what is wrong with it."""
    if not isinstance(row, dict):
        return "expected a JSON object"
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            return "`messages` must be a non-empty list"
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict) or msg.get("role") not in ROLES:
                return f"messages[{i}].role must be one of {sorted(ROLES)}"
            if not isinstance(msg.get("content"), str) or not msg["content"].strip():
                return f"messages[{i}].content must be a non-empty string"
        if messages[-1]["role"] != "assistant":
            return "the last message must be the assistant's answer"
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    if "instruction" in row and "output" in row:
        if not all(isinstance(row.get(k, ""), str) for k in ("instruction", "input", "output")):
            return "`instruction`, `input` and `output` must be strings"
        if not row["instruction"].strip() or not row["output"].strip():
            return "`instruction` and `output` must not be empty"
        prompt = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}]
    return "unknown record shape: need `messages` (chat) or `instruction` + `output` (alpaca)"


def read_conversations(path: Path, field: str = "dataset_name") -> list[list[dict[str, str]]]:
    """Every conversation in the file, or DatasetInvalid listing the first bad lines by number."""
    conversations, problems = [], []
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                problem = None
                if len(raw) > MAX_LINE_BYTES:
                    problem = f"line is {len(raw)} bytes (max {MAX_LINE_BYTES})"
                elif raw.strip():
                    try:
                        parsed = to_messages(json.loads(raw.decode("utf-8")))
                    except UnicodeDecodeError:
                        problem = "not valid UTF-8"
                    except json.JSONDecodeError as exc:
                        problem = f"invalid JSON ({exc.msg} at column {exc.colno})"
                    else:
                        if isinstance(parsed, str):
                            problem = parsed
                        else:
                            conversations.append(parsed)
                if problem:
                    problems.append(f"line {number}: {problem}")
    except OSError as exc:
        raise DatasetInvalid(f"cannot read {path}: {exc}", field=field) from exc
    if problems:
        shown = "; ".join(problems[:MAX_REPORTED]) + (f"; and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else "")
        raise DatasetInvalid(f"{path.name} has {len(problems)} invalid line(s): {shown}.", field=field,
                             hint="Fix or remove those lines; nothing was trained.")
    if not conversations:
        raise DatasetInvalid(f"{path.name} has no records.", field=field, hint="Extract a dataset first.")
    return conversations
