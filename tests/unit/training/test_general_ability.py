"""The general-ability files: shape, counts, no eval question leaking into replay, and the scorer."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources

import pytest

from graphtune.tools.training.general_ability import (overlaps, read_general_eval, read_general_prompts,
                                                      retention_questions, score_general, summarize_general)

PROMPT_CATEGORIES = {"everyday", "arithmetic", "writing", "programming", "python", "format"}
EVAL_CATEGORIES = {"everyday", "arithmetic", "science", "python", "programming", "format"}


def all_overlaps() -> list[str]:
    sources = [(p["id"], p["category"], p["prompt"]) for p in read_general_prompts()]
    sources += [(f"retention{i}", "retention", q) for i, q in enumerate(retention_questions())]
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
