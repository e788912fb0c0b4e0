"""Writing dataset-shaped files: one chat/alpaca example per row, rows as JSON lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def format_example(prompt: str | list[dict[str, str]], answer: str, meta: dict[str, Any], *, output_format: str,
                   system_prompt: str | None) -> dict[str, Any]:
    """One example in the dataset's format: chat messages (with the optional system prompt) or alpaca.

    `prompt` is the user's question, or the whole conversation before the answer (a system
    message, earlier turns). Alpaca has one instruction: it keeps the last user turn only."""
    turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if output_format == "alpaca":
        instruction = next(m["content"] for m in reversed(turns) if m["role"] == "user")
        return {"instruction": instruction, "input": "", "output": answer, "meta": meta}
    if system_prompt and turns[0]["role"] != "system":
        turns.insert(0, {"role": "system", "content": system_prompt})
    return {"messages": [*turns, {"role": "assistant", "content": answer}], "meta": meta}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """UTF-8 JSON lines (non-ASCII kept as is; readers split on '\\n' only)."""
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
