"""General replay and general ability with a real (tiny) model: the base model's answers are made
once and served from the cache after; replay rows are the requested share; the report flags forgetting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphtune.tools.training.answer_cache import AnswerCache
from graphtune.tools.training.evaluate import FORGETTING_POINTS, answer_general, general_report
from graphtune.tools.training.general_replay import replay_conversations, replay_rows_needed


def test_replay_rows_are_the_requested_share() -> None:
    assert replay_rows_needed(800, 0.2) == 200  # 200 of 1000 rows
    assert replay_rows_needed(800, 0.0) == 0


def test_replay_answers_come_from_the_base_model_once(tiny_model: Path, tmp_path: Path) -> None:
    from graphtune.tools.training.generation import generate_chat_detailed, load_for_inference
    from types import SimpleNamespace

    model, tokenizer = load_for_inference(str(tiny_model), None, "cpu", SimpleNamespace())
    calls: list[int] = []

    def answer(conversations: list[Any]) -> list[Any]:
        calls.append(len(conversations))
        return generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=8, batch_size=16)

    cache = AnswerCache(tmp_path / "answers", str(tiny_model))
    first = replay_conversations(70, cache=cache, answer=answer)
    asked = sum(calls)
    assert asked == 70  # distinct prompts first: 70 rows need 70 prompts
    again = replay_conversations(70, cache=cache, answer=answer)
    assert sum(calls) == asked and again == first  # served from the cache
    for conversation in first:  # only answers that ended within the budget are replayed
        assert [m["role"] for m in conversation] == ["user", "assistant"] and conversation[1]["content"].strip()
    base = answer_general(model, tokenizer, disable_adapter=True, batch_size=32, cache=cache)
    assert base == answer_general(model, tokenizer, disable_adapter=True, batch_size=32, cache=cache)
    assert len(base) >= 170 and all({"correct", "ended", "category"} <= set(r) for r in base)


def test_general_report_flags_forgetting() -> None:
    def rows(right: int) -> list[dict[str, Any]]:
        return [{"id": f"g{i}", "category": "x", "question": "q", "answer": "a", "correct": i < right, "ended": True}
                for i in range(100)]

    kept = general_report(rows(70), rows(68))
    assert kept["drop_points"] == 2.0 and not kept["forgetting"]
    lost = general_report(rows(70), rows(60))
    assert lost["drop_points"] == 10.0 and lost["forgetting"] and FORGETTING_POINTS == 5.0
    assert len(lost["answers"]) == 100 and lost["answers"][0]["base"]["answer"] == "a"


def test_cpu_asks_a_stratified_subset_of_the_general_questions() -> None:
    from collections import Counter

    from graphtune.tools.training.evaluate import CPU_GENERAL_PER_CATEGORY, general_questions

    every = general_questions()
    subset = general_questions(CPU_GENERAL_PER_CATEGORY)
    per_category = Counter(q["category"] for q in subset)
    assert len(every) >= 170 and set(per_category) == {q["category"] for q in every}
    assert set(per_category.values()) == {CPU_GENERAL_PER_CATEGORY}
