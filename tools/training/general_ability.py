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


# Held-out means held out: an eval question and a replay prompt must not share a fact or topic,
# or replay would re-teach the base model's answer to the very question that measures what was kept.
_CODE = {"python", "programming"}
# Words that carry no topic: question scaffolding and format instructions.
_STOPWORDS = set("""a an the of in on at to for from by with and or not is are was were be been do does did
what which who whom whose when where why how many much this that these those it its you your i me my we our
they them their he she his her there here as if than then so but can could would should will shall may
into out up about over under after before all any some each every one two three only just please give
answer reply word words single number yes no name list called call mean means used use using write tell
explain example show result value python have has had get gets got make like""".split())
# Gold answers that are ordinary English words, so finding them in a replay prompt says nothing.
_COMMON_GOLDS = {"yes", "no", "true", "false", "none", "day", "down", "closed", "shut", "late", "cold"}
_NUMBER_WORDS = re.compile(r"(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|sixteen|nineteen"
                          r"|twenty|forty|fifty|sixty|seventy|eighty|hundred|thousand|a|[- ])+")


def _words(text: str) -> set[str]:
    words = set()
    for token in re.findall(r"[a-z][a-z0-9]*", text.lower()):
        if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
        if token not in _STOPWORDS and len(token) > 1 and token not in {"doe", "ha"}:
            words.add(token)
    return words


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)?", text.replace(",", "")))


def retention_questions() -> list[str]:
    """The user turns of `retention.jsonl` (the retention-loss texts): held out like the eval set."""
    text = resources.files(PACKAGE).joinpath("retention.jsonl").read_text(encoding="utf-8")
    return [json.loads(line)["messages"][0]["content"] for line in text.splitlines() if line.strip()]


def overlaps(question: dict, prompt: str, prompt_category: str) -> list[str]:
    """Why an eval question and a replay (or retention) prompt share a fact or topic; empty when they don't.

    Three signals: two or more shared content words; the question's gold answer named in the prompt
    (for code questions only in code prompts, where the word is code); all of its numbers reused."""
    reasons = []
    shared = _words(question["question"]) & _words(prompt)
    if len(shared) >= 2:
        reasons.append(f"shared words {sorted(shared)}")
    if question["category"] not in _CODE or prompt_category in _CODE:
        for term in question["gold"]["any"]:
            if term.lower() in _COMMON_GOLDS or re.fullmatch(r"[\d.,]+", term) or _NUMBER_WORDS.fullmatch(term.lower()):
                continue
            if score_general(prompt, {"any": [term]}):
                reasons.append(f"gold {term!r} in prompt")
    numbers = _numbers(question["question"])
    if len(numbers) >= 2 and numbers <= _numbers(prompt):
        reasons.append(f"numbers {sorted(numbers)}")
    return reasons



def touches_held_out(prompt: str) -> bool:
    """True when a candidate replay prompt shares a fact or topic with a general-ability eval
    question or a retention text (the `overlaps` rules, with the prompt treated as code, the
    strictest reading). Used to filter prompts the base model writes itself."""
    return any(overlaps(q, prompt, "programming") for q in _held_out_questions())


@lru_cache(maxsize=1)
def _held_out_questions() -> tuple[dict[str, Any], ...]:
    retention = [{"question": q, "category": "retention", "gold": {"any": []}} for q in retention_questions()]
    return tuple(read_general_eval() + retention)


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
