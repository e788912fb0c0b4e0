"""Score closed-book answers against a probe's gold facts (pure Python, no model needed).

Rules (docs/dataset.md): a module fact is right when the answer names the module's dotted
path (or its file path) as a whole identifier; a name-set fact is right when the answer
names at least `required` of the gold names (recall), each matched as a whole identifier or
as the last part of a dotted one. Backticks, quotes and trailing punctuation are ignored.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

_IDENT = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*")
_PATH = re.compile(r"[\w./-]+\.py\b")


def identifiers(text: str) -> set[str]:
    """Every identifier and dotted path in the text, plus the last part of each dotted one."""
    found = set(_IDENT.findall(text))
    return found | {name.rsplit(".", 1)[-1] for name in found}


def _module_of_path(path: str) -> str:
    stem = path[:-3] if path.endswith(".py") else path
    parts = [p for p in stem.split("/") if p]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def score_answer(answer: str, gold: dict[str, Any]) -> tuple[bool, float]:
    """(correct, recall) of one answer."""
    if gold["kind"] == "module":
        dotted = set(_IDENT.findall(answer))
        paths = {_module_of_path(p) for p in _PATH.findall(answer)}
        hit = gold["module"] in dotted or gold["module"] in paths or gold.get("file", "\0") in answer or (
            "/" in gold["module"] and gold["module"] in answer)  # a Go package's import path
        return hit, 1.0 if hit else 0.0
    names = list(dict.fromkeys(gold["names"]))
    found = identifiers(answer)
    hits = sum(1 for name in names if name in found or name.rsplit(".", 1)[-1] in found
               or (not _IDENT.fullmatch(name) and name in answer))  # a type such as `Draft<T>` or `list[str]`
    required = max(1, min(gold.get("required", len(names)), len(names)))
    return hits >= required, hits / len(names) if names else 0.0


def summarize(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy overall and per fact type from rows with `fact_type`, `correct`, `ended`."""
    per_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    total = correct = ended = 0
    for row in results:
        per_type[row["fact_type"]][0] += int(row["correct"])
        per_type[row["fact_type"]][1] += 1
        total += 1
        correct += int(row["correct"])
        ended += int(row.get("ended", True))
    return {"probes": total, "accuracy": round(correct / total, 4) if total else None,
            "ended_cleanly": round(ended / total, 4) if total else None,
            "by_fact_type": {k: {"accuracy": round(c / n, 4), "probes": n} for k, (c, n) in sorted(per_type.items())}}
