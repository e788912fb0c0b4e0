"""General ability: replay prompts that keep a tuned model an assistant, and questions that measure it.

A model tuned only on code facts forgets how to answer everyday questions (SmolLM2-135M-Instruct:
75 % right before, 36 % after: "What is 2 + 2?" -> "`2 + 2` is a statement."). Two packaged files
address that:

- `general_prompts.jsonl`: about 500 general prompts (everyday, arithmetic, writing, programming,
  python, format) whose answers by the *base* model can be replayed during training.
- `general_eval.jsonl`: held-out questions with gold answers, scored by `score_general`. No question
  shares a fact or topic with a replay prompt or with `retention.jsonl`, so the score measures what
  the model kept, not what replay re-taught it (tests/unit/training/test_general_ability.py checks it).

Scoring is deliberately lenient about form and strict about content: an answer is right when it
contains one of the gold strings as a whole word or number, case-insensitively, and none of the
`none` strings (a "yes" answer that also says "no" is not a yes).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from functools import lru_cache
from importlib import resources
from typing import Any

PACKAGE = "graphtune.tools.training"
PROMPTS_FILE = "general_prompts.jsonl"
EVAL_FILE = "general_eval.jsonl"

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def read_general_prompts() -> list[dict[str, Any]]:
    """Replay prompts `{"id", "category", "prompt"}`, in file order (ids gp0001...)."""
    return _read_jsonl(PROMPTS_FILE)


def read_general_eval() -> list[dict[str, Any]]:
    """Held-out questions `{"id", "category", "question", "gold": {"any": [...], "none"?: [...]}}`."""
    return _read_jsonl(EVAL_FILE)


def _read_jsonl(name: str) -> list[dict[str, Any]]:
    # Read from the installed package, not a path beside this file, so it works from a wheel too.
    text = resources.files(PACKAGE).joinpath(name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def score_general(answer: str, gold: dict[str, Any]) -> bool:
    """True when `answer` names any `gold["any"]` term and no `gold.get("none")` term.

    Terms match case-insensitively as whole words or numbers: "4" matches "2 + 2 = 4." but
    not "14", "4.5" or "0.4"; "1,000" and "1000" are the same number. A term that begins or ends
    with punctuation (".py", "**", "<a>") is matched as plain text on that side."""
    text = _normalize(answer)
    if any(_term_pattern(term).search(text) for term in gold.get("none", [])):
        return False
    return any(_term_pattern(term).search(text) for term in gold["any"])


def _normalize(text: str) -> str:
    return _THOUSANDS.sub("", text).casefold()


@lru_cache(maxsize=4096)
def _term_pattern(term: str) -> re.Pattern[str]:
    norm = _normalize(term.strip())
    left = r"(?<![\w.])" if norm[:1].isdigit() else r"(?<!\w)" if _is_word_char(norm[:1]) else ""
    right = r"(?![\w])(?!\.\d)" if norm[-1:].isdigit() else r"(?!\w)" if _is_word_char(norm[-1:]) else ""
    return re.compile(left + re.escape(norm) + right)


def _is_word_char(char: str) -> bool:
    return bool(char) and (char.isalnum() or char == "_")


def summarize_general(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy overall and per category from rows with `category`, `correct` and `ended`.

    `ended_cleanly` is reported beside accuracy because a right answer that runs on past the
    end of its turn is still a broken assistant."""
    per_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    correct = ended = 0
    for row in rows:
        per_category[row["category"]][0] += int(bool(row["correct"]))
        per_category[row["category"]][1] += 1
        correct += int(bool(row["correct"]))
        ended += int(bool(row.get("ended", True)))
    total = len(rows)
    return {"questions": total,
            "accuracy": round(correct / total, 4) if total else None,
            "ended_cleanly": round(ended / total, 4) if total else None,
            "by_category": {name: {"accuracy": round(c / n, 4), "questions": n}
                            for name, (c, n) in sorted(per_category.items())}}
