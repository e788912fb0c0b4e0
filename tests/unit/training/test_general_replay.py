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


def _fake_answer(calls: list[int]) -> Any:
    from graphtune.tools.training.generation import Generation

    def answer(conversations: list[Any]) -> list[Any]:
        calls.append(len(conversations))
        return [Generation(f"answer to {c[0]['content']}", True, 5) for c in conversations]
    return answer


def test_more_rows_than_shipped_prompts_come_from_prompts_the_base_model_wrote(tmp_path: Path) -> None:
    from graphtune.tools.training.general_ability import read_general_prompts
    from graphtune.tools.training.general_replay import SELF_PROMPT_CHUNK

    samples: list[tuple[int, int]] = []

    def sample(count: int, seed: int) -> list[str]:
        samples.append((count, seed))
        written = [f"Describe hobby number {seed}-{i} for a beginner" for i in range(count - 2)]
        return written + ["What does HTML stand for in web pages?", written[0]]  # held out; a repeat

    cache = AnswerCache(tmp_path / "answers", "base")
    shipped = len(read_general_prompts())
    calls: list[int] = []
    rows = replay_conversations(shipped + 300, cache=cache, answer=_fake_answer(calls), sample=sample)
    prompts = [r[0]["content"] for r in rows]
    assert len(rows) == shipped + 300 and len(set(prompts)) == shipped + 300  # no prompt repeats while new ones exist
    assert len(samples) == 2 and all(count == SELF_PROMPT_CHUNK for count, _ in samples)
    assert not any("HTML" in p for p in prompts)  # a prompt on a held-out eval question is never replayed
    asked = sum(calls)
    again = replay_conversations(shipped + 300, cache=cache, answer=_fake_answer(calls), sample=sample)
    assert again == rows and sum(calls) == asked and len(samples) == 2  # prompts and answers cached


def test_a_job_of_another_size_reuses_every_answered_chunk(tmp_path: Path) -> None:
    """Answers are cached per prompt chunk the base model wrote, so a smaller job after a larger
    one (another dataset on the same base model) generates nothing (it re-answered 143 prompts,
    97 s, when the cache was keyed by groups of the job's own list)."""
    from graphtune.tools.training.general_ability import read_general_prompts

    def sample(count: int, seed: int) -> list[str]:
        return [f"Explain idea {seed}-{i} in two sentences" for i in range(count - 3)]

    cache = AnswerCache(tmp_path / "answers", "base")
    shipped = len(read_general_prompts())
    calls: list[int] = []
    larger = replay_conversations(shipped + 700, cache=cache, answer=_fake_answer(calls), sample=sample)
    asked = sum(calls)
    smaller = replay_conversations(shipped + 300, cache=cache, answer=_fake_answer(calls), sample=sample)
    assert sum(calls) == asked  # nothing answered again
    assert {r[0]["content"] for r in smaller} <= {r[0]["content"] for r in larger}


def test_without_a_sampler_prompts_repeat(tmp_path: Path) -> None:
    from graphtune.tools.training.general_ability import read_general_prompts

    shipped = len(read_general_prompts())
    rows = replay_conversations(shipped + 10, cache=AnswerCache(tmp_path, "base"), answer=_fake_answer([]))
    assert len(rows) == shipped + 10 and len({r[0]["content"] for r in rows}) == shipped


def test_the_base_model_writes_user_prompts_deterministically(tiny_model: Path) -> None:
    from types import SimpleNamespace

    from graphtune.tools.training.generation import load_for_inference
    from graphtune.tools.training.self_prompts import sample_user_prompts, user_turn_prefix

    model, tokenizer = load_for_inference(str(tiny_model), None, "cpu", SimpleNamespace())
    prefix = user_turn_prefix(tokenizer)
    assert prefix and "\x00" not in prefix
    first = sample_user_prompts(model, tokenizer, 8, seed=3, batch_size=4)
    assert first == sample_user_prompts(model, tokenizer, 8, seed=3, batch_size=4)
    assert all(isinstance(p, str) for p in first)


def test_keep_prompt_rules() -> None:
    from graphtune.tools.training.self_prompts import keep_prompt

    assert keep_prompt("How do I reverse a list in Python?")
    assert not keep_prompt("Hi")  # too short to be a question
    assert not keep_prompt("What is<|im_end|> this")  # template leftovers
    assert not keep_prompt(" ".join(["word"] * 80))


def test_answers_that_never_end_do_not_start_self_prompting(tmp_path: Path) -> None:
    """A base model that never ends its answers (a tiny test model) leaves few usable shipped
    answers; writing more prompts would only cost generations, so a job needing no more prompts
    than are shipped never asks the sampler (measured: +150 s of a CPU job before this rule)."""
    from graphtune.tools.training.generation import Generation

    def never_ends(conversations: list[Any]) -> list[Any]:
        return [Generation("and so on and so on", i % 10 == 0, 256) for i, _ in enumerate(conversations)]

    def sample(count: int, seed: int) -> list[str]:
        raise AssertionError("the sampler must not be asked")

    rows = replay_conversations(100, cache=AnswerCache(tmp_path, "base"), answer=never_ends, sample=sample)
    assert len(rows) == 100 and len({r[0]["content"] for r in rows}) == 10  # the ten usable answers, repeated


def test_a_base_that_ends_no_answer_writes_no_prompts(tmp_path: Path) -> None:
    """A pretrained base (gemma3-270m) never ends a turn: no shipped answer is usable, so a job that
    needs more rows than are shipped gets no replay at once instead of writing and answering
    thousands of prompts that would end no better."""
    from graphtune.tools.training.general_ability import read_general_prompts
    from graphtune.tools.training.generation import Generation

    calls: list[int] = []

    def never_ends(conversations: list[Any]) -> list[Any]:
        calls.append(len(conversations))
        return [Generation("and so on and so on", False, 256) for _ in conversations]

    def sample(count: int, seed: int) -> list[str]:
        raise AssertionError("the sampler must not be asked")

    shipped = len(read_general_prompts())
    rows = replay_conversations(shipped + 300, cache=AnswerCache(tmp_path, "base"), answer=never_ends, sample=sample)
    assert rows == [] and sum(calls) == shipped  # the shipped prompts were asked once, nothing more


def test_cached_answers_survive_a_moved_data_dir(tmp_path: Path) -> None:
    """A base model converted inside the data dir is keyed by its path relative to it: the data dir
    can move and keep its answers; entries keyed by the absolute path (before) are still read."""
    import shutil

    home = tmp_path / "home"
    model = home / "base_models" / ".gguf-cache" / "smol.q4-0123"
    model.mkdir(parents=True)
    AnswerCache(home / "base_models" / "answers", str(model)).put("probes", {"q": 1}, ["a"])
    moved = tmp_path / "moved"
    shutil.move(str(home), moved)
    again = AnswerCache(moved / "base_models" / "answers", str(moved / "base_models" / ".gguf-cache" / "smol.q4-0123"))
    assert again.get("probes", {"q": 1}) == ["a"] and again.get("probes", {"q": 2}) is None
    other = AnswerCache(moved / "base_models" / "answers", str(moved / "base_models" / ".gguf-cache" / "other"))
    assert other.get("probes", {"q": 1}) is None  # another model's answers are never served
    written_before = again._path("probes", {"q": 3}, str(moved / "base_models" / ".gguf-cache" / "smol.q4-0123"))
    written_before.write_text('["c"]')  # an entry keyed by the absolute path, as the cache wrote them before
    assert again.get("probes", {"q": 3}) == ["c"]
    legacy = moved / "base_models" / "answers" / "legacy"
    old = AnswerCache(legacy, "/somewhere/else/model")
    old.put("probes", {"q": 1}, ["b"])  # outside the data dir: keyed by the absolute path, as before
    assert AnswerCache(legacy, "/somewhere/else/model").get("probes", {"q": 1}) == ["b"]
