"""tests/llama_runtime.ask: a node-llama-cpp crash part-way keeps the answers made before it and asks
the rest in a fresh process; the same question crashing twice is an error (no endless restarts)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import llama_runtime
import pytest


def _fake_runs(crash_at: list[int | None]) -> Any:
    """A `_run_chat` stand-in: run k answers its questions up to crash_at[k] (None = all), then aborts."""
    calls: list[list[str]] = []

    def run(folder: Path, gguf: Path, questions: list[Any], *_: Any) -> tuple[Any, list[dict[str, Any]]]:
        calls.append(list(questions))
        stop = crash_at[len(calls) - 1]
        made = questions if stop is None else questions[:stop]
        lines = [{"index": i, "text": f"answer to {q}", "stop_reason": "eogToken", "seconds": 0.1}
                 for i, q in enumerate(made)] + ([{"load_s": 0.5, "done": True}] if stop is None else [])
        return subprocess.CompletedProcess([], 0 if stop is None else -6, "", "byte_to_token"), lines

    return run, calls


def test_a_crash_resumes_from_the_next_question(monkeypatch: pytest.MonkeyPatch) -> None:
    run, calls = _fake_runs([2, None])
    monkeypatch.setattr(llama_runtime, "_run_chat", run)
    reply = llama_runtime.ask(Path("."), Path("m.gguf"), ["q0", "q1", "q2", "q3"])
    assert [a["text"] for a in reply["answers"]] == ["answer to q0", "answer to q1", "answer to q2", "answer to q3"]
    assert reply["restarts"] == 1 and calls[1] == ["q2", "q3"]


def test_the_same_question_crashing_twice_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    run, _ = _fake_runs([1, 0, None])
    monkeypatch.setattr(llama_runtime, "_run_chat", run)
    with pytest.raises(RuntimeError, match="at question 1"):
        llama_runtime.ask(Path("."), Path("m.gguf"), ["q0", "q1", "q2"])
