"""The general-ability files: shape, counts, no eval question leaking into replay, and the scorer."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources

import pytest

from graphtune.tools.training.general_ability import (read_general_eval, read_general_prompts, score_general,
                                                      summarize_general)

PROMPT_CATEGORIES = {"everyday", "arithmetic", "writing", "programming", "python", "format"}
EVAL_CATEGORIES = {"everyday", "arithmetic", "science", "python", "programming", "format"}
CODE = {"python", "programming"}

# Words that carry no topic: question scaffolding and format instructions.
STOPWORDS = set("""a an the of in on at to for from by with and or not is are was were be been do does did
what which who whom whose when where why how many much this that these those it its you your i me my we our
they them their he she his her there here as if than then so but can could would should will shall may
into out up about over under after before all any some each every one two three only just please give
answer reply word words single number yes no name list called call mean means used use using write tell
explain example show result value python have has had get gets got make like""".split())
# Gold answers that are ordinary English words, so finding them in a replay prompt says nothing.
COMMON_GOLDS = {"yes", "no", "true", "false", "none", "day", "down", "closed", "shut", "late", "cold"}
NUMBER_WORDS = re.compile(r"(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|sixteen|nineteen"
                          r"|twenty|forty|fifty|sixty|seventy|eighty|hundred|thousand|a|[- ])+")


def _words(text: str) -> set[str]:
    words = set()
    for token in re.findall(r"[a-z][a-z0-9]*", text.lower()):
        if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
        if token not in STOPWORDS and len(token) > 1 and token not in {"doe", "ha"}:
            words.add(token)
    return words


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)?", text.replace(",", "")))


def _retention_questions() -> list[str]:
    text = resources.files("graphtune.tools.training").joinpath("retention.jsonl").read_text(encoding="utf-8")
    return [json.loads(line)["messages"][0]["content"] for line in text.splitlines() if line.strip()]


def overlaps(question: dict, prompt: str, prompt_category: str) -> list[str]:
    """Why an eval question and a replay (or retention) prompt share a fact or topic; empty when they don't.

    Three signals: two or more shared content words; the question's gold answer named in the prompt
    (for code questions only in code prompts, where the word is code); all of its numbers reused."""
    reasons = []
    shared = _words(question["question"]) & _words(prompt)
    if len(shared) >= 2:
        reasons.append(f"shared words {sorted(shared)}")
    if question["category"] not in CODE or prompt_category in CODE:
        for term in question["gold"]["any"]:
            if term.lower() in COMMON_GOLDS or re.fullmatch(r"[\d.,]+", term) or NUMBER_WORDS.fullmatch(term.lower()):
                continue
            if score_general(prompt, {"any": [term]}):
                reasons.append(f"gold {term!r} in prompt")
    numbers = _numbers(question["question"])
    if len(numbers) >= 2 and numbers <= _numbers(prompt):
        reasons.append(f"numbers {sorted(numbers)}")
    return reasons


def all_overlaps() -> list[str]:
    sources = [(p["id"], p["category"], p["prompt"]) for p in read_general_prompts()]
    sources += [(f"retention{i}", "retention", q) for i, q in enumerate(_retention_questions())]
    return [f"{q['id']} {q['question']!r} ~ {pid} {text!r}: {'; '.join(why)}"
            for q in read_general_eval() for pid, category, text in sources
            if (why := overlaps(q, text, category))]


def test_prompts_parse_with_unique_ids_and_every_category() -> None:
    prompts = read_general_prompts()
    assert len(prompts) >= 480
    assert len({p["id"] for p in prompts}) == len(prompts)
    assert all(re.fullmatch(r"gp\d{4}", p["id"]) for p in prompts)
    counts = Counter(p["category"] for p in prompts)
    assert set(counts) == PROMPT_CATEGORIES
    assert min(counts.values()) >= 60  # roughly even
    assert all(0 < len(p["prompt"]) < 300 for p in prompts)
    assert len({p["prompt"].lower() for p in prompts}) == len(prompts)


def test_eval_parses_with_unique_ids_golds_and_every_category() -> None:
    questions = read_general_eval()
    assert len(questions) >= 170
    assert len({q["id"] for q in questions}) == len(questions)
    assert len({q["question"].lower() for q in questions}) == len(questions)
    assert set(Counter(q["category"] for q in questions)) == EVAL_CATEGORIES
    for q in questions:
        assert q["gold"]["any"] and all(isinstance(t, str) and t.strip() for t in q["gold"]["any"]), q
        assert set(q["gold"]) <= {"any", "none"}, q
        assert not any(score_general(t, {"any": q["gold"].get("none", ["\0"])}) for t in q["gold"]["any"]), q


def test_no_eval_question_shares_a_fact_with_replay_or_retention() -> None:
    found = all_overlaps()
    assert not found, "\n".join(found[:40])


def test_overlap_check_catches_a_shared_fact() -> None:
    question = {"category": "everyday", "question": "What is the capital of Japan?", "gold": {"any": ["Tokyo"]}}
    assert overlaps(question, "Which city is the capital of Japan?", "everyday")
    assert overlaps(question, "Tell me about Tokyo.", "writing")
    assert not overlaps(question, "What is the capital of Kenya?", "everyday")
    sums = {"category": "arithmetic", "question": "What is 7 + 8?", "gold": {"any": ["15"]}}
    assert overlaps(sums, "whats 8+7", "arithmetic") and not overlaps(sums, "What is 17 + 28?", "arithmetic")
    code = {"category": "python", "question": "Which keyword exits a loop early?", "gold": {"any": ["break"]}}
    assert overlaps(code, "What does break do in Python?", "python")
    assert not overlaps(code, "Take a break and write a haiku.", "writing")


@pytest.mark.parametrize(("answer", "gold", "right"), [
    ("2 + 2 = 4.", {"any": ["4", "four"]}, True),
    ("The answer is Four.", {"any": ["4", "four"]}, True),
    ("It is 14.", {"any": ["4", "four"]}, False),
    ("About 4.5 hours", {"any": ["4"]}, False),
    ("0.4 of it", {"any": ["4"]}, False),
    ("fourteen", {"any": ["four"]}, False),
    ("The capital is paris.", {"any": ["Paris"]}, True),
    ("Comparison is key", {"any": ["Paris"]}, False),
    ("1,000 + 1,000 = 2,000", {"any": ["2000"]}, True),
    ("It is 2000.", {"any": ["2,000"]}, True),
    ("It is 12,000.", {"any": ["2000"]}, False),
    ("Yes, the Sun is a star.", {"any": ["yes"], "none": ["no"]}, True),
    ("No, it is not.", {"any": ["yes"], "none": ["no"]}, False),
    ("Yes and no.", {"any": ["yes"], "none": ["no"]}, False),
    ("Nobody knows", {"any": ["nobody"], "none": ["no"]}, True),
    ("Use the `def` keyword.", {"any": ["def"]}, True),
    ("defaults apply", {"any": ["def"]}, False),
    ("Save it as script.py", {"any": [".py"]}, True),
    ("Write 2 ** 3.", {"any": ["**"]}, True),
    ("Leonardo da Vinci painted it.", {"any": ["da Vinci"]}, True),
    ("", {"any": ["x"]}, False),
])
def test_score_general(answer: str, gold: dict, right: bool) -> None:
    assert score_general(answer, gold) is right


def test_summarize_general_overall_and_per_category() -> None:
    rows = [{"category": "python", "correct": True, "ended": True},
            {"category": "python", "correct": False, "ended": True},
            {"category": "format", "correct": True, "ended": False}]
    summary = summarize_general(rows)
    assert summary == {"questions": 3, "accuracy": 0.6667, "ended_cleanly": 0.6667,
                       "by_category": {"format": {"accuracy": 1.0, "questions": 1},
                                       "python": {"accuracy": 0.5, "questions": 2}}}
    assert summarize_general([])["accuracy"] is None
