"""Writing dataset-shaped files: one chat/alpaca example per row, rows as JSON lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def format_example(prompt: str, answer: str, meta: dict[str, Any], *, output_format: str,
                   system_prompt: str | None) -> dict[str, Any]:
    """One example in the dataset's format: chat messages (with the optional system prompt) or alpaca."""
    if output_format == "alpaca":
        return {"instruction": prompt, "input": "", "output": answer, "meta": meta}
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    return {"messages": messages, "meta": meta}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """UTF-8 JSON lines (non-ASCII kept as is; readers split on '\\n' only)."""
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
