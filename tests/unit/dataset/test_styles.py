"""Question style families: every trained family appears, held-out families are never trained
on, answers to format requests are exactly the format asked for, and the probe report keeps
held-out templates and held-out families apart."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from graphtune.server.settings import Settings
from graphtune.tools.dataset.extract import run_extract
from graphtune.tools.dataset.params import ExtractParams
from graphtune.tools.dataset.probe_scoring import score_answer
from graphtune.tools.dataset.styles import HELD_OUT_FAMILIES, TEMPLATES_FAMILY, TRAIN_FAMILIES, FactQuestion, render
from graphtune.tools.training.evaluate import select_probes, summarize_probe_rows


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().split("\n") if line]


def _location(**extra: object) -> FactQuestion:
    base = {"question": "Which module defines `make_msgid`?", "answer": "`make_msgid` is defined in `email.utils`.",
            "fact_type": "location", "terse_names": ["email.utils", "email/utils.py"], "codebase": "email",
            "unit": "module", "kind": "function", "name": "make_msgid", "distractor": "email.header"}
    return FactQuestion(**{**base, **extra})  # type: ignore[arg-type]


def test_dataset_trains_every_family_and_probes_held_out_ones(email_graph: Settings) -> None:
    run_extract(ExtractParams(dataset_name="fam", objective="knowledge"), email_graph)
    folder = email_graph.datasets_dir / "fam"
    train = _read(folder / "train.jsonl")
    trained = Counter(r["meta"]["family"] for r in train)
    assert set(trained) == set(TRAIN_FAMILIES), trained
    assert all(trained[f] > 0.05 * len(train) for f in TRAIN_FAMILIES)
    probes = _read(folder / "probes.jsonl")
    families = Counter(p["family"] for p in probes)
    assert set(families) == {TEMPLATES_FAMILY, *HELD_OUT_FAMILIES}
    assert families[TEMPLATES_FAMILY] == sum(families[f] for f in HELD_OUT_FAMILIES)  # one of each per fact
    train_questions = {r["messages"][-2]["content"] for r in train}
    assert not {p["question"] for p in probes} & train_questions
    # the held-out families' wrappers never occur in training
    assert any(p["question"].startswith("My teammate asked me") for p in probes)
    assert not any(m["content"].startswith("My teammate asked me") for r in train for m in r["messages"])
    named = [r for r in train if r["meta"]["family"] == "named" and r["meta"]["task"] == "location"]
    assert any("`email`" in r["messages"][-2]["content"] for r in named)  # the failure mode, now trained
    for r in named:  # the code base's name in the question does not change the answer: the full module
        assert "email/" in r["messages"][-1]["content"] or "(`email" in r["messages"][-1]["content"]
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["train_examples_by_family"] == dict(sorted(trained.items()))
    assert meta["probes_by_family"] == dict(sorted(families.items()))


def test_second_turn_and_system_families_are_real_conversations(email_graph: Settings) -> None:
    run_extract(ExtractParams(dataset_name="conv", objective="knowledge"), email_graph)
    train = _read(email_graph.datasets_dir / "conv" / "train.jsonl")
    multi = [r for r in train if r["meta"]["family"] == "multiturn"]
    assert multi and all([m["role"] for m in r["messages"]] == ["user", "assistant", "user", "assistant"] for r in multi)
    # the earlier exchange is about another entity: it must not hand over the answer
    leaked = sum(f"`{r['meta']['entity']}`" in r["messages"][1]["content"] for r in multi)
    assert leaked < 0.05 * len(multi), leaked
    system = [r for r in train if r["meta"]["family"] == "system"]
    assert system and all(r["messages"][0]["role"] == "system" for r in system)


def test_format_requests_get_exactly_that_format() -> None:
    rng = random.Random(0)
    seen = set()
    for _ in range(60):
        messages, answer, family = render("format", _location(), rng)
        assert family == "format"
        question = messages[-1]["content"]
        if "yes or no" in question:
            assert answer.startswith(("Yes.", "No.")) and "`email.utils`" in answer
            assert answer.startswith("Yes.") == ("`email.utils`?" in question)
            seen.add("yesno")
        elif "and the file" in question:
            assert answer == "`email.utils` (`email/utils.py`)"
            seen.add("module_file")
        else:
            assert answer == "`email.utils`"
            seen.add("module")
        assert score_answer(answer, {"kind": "module", "module": "email.utils", "file": "email/utils.py"})[0]
    assert seen == {"yesno", "module_file", "module"}
    names = FactQuestion("List the methods of `Message`.", "...", "methods", ["get", "set"], "email", "module", "class",
                         "Message")
    _, answer, _ = render("format", names, rng)
    assert answer == "`get`, `set`"
    prose = FactQuestion("What does `x` do?", "It parses.", "summary", [], "email", "module", "function", "x")
    assert render("format", prose, rng)[2] == "plain"  # no terse form: a plain question instead


def test_an_unnamed_code_base_is_never_named() -> None:
    rng = random.Random(1)
    for family in ("named", "relay", "quiz", "newcomer", "system"):
        for _ in range(20):
            messages, _, _ = render(family, _location(codebase=""), rng)
            assert "``" not in json.dumps(messages) and "{cb}" not in json.dumps(messages)


def test_probe_report_keeps_templates_and_families_apart() -> None:
    rows = [{"fact_type": "location", "family": TEMPLATES_FAMILY, "correct": True, "ended": True},
            {"fact_type": "location", "family": TEMPLATES_FAMILY, "correct": True, "ended": True},
            {"fact_type": "location", "family": "relay", "correct": False, "ended": True},
            {"fact_type": "methods", "family": "quiz", "correct": True, "ended": False}]
    report = summarize_probe_rows(rows)
    assert report["held_out_templates"]["core_accuracy"] == 1.0
    assert report["held_out_families"]["core_accuracy"] == 0.5
    assert report["held_out_families"]["by_family"] == {"quiz": 1.0, "relay": 0.0}
    probes = [{"id": str(i), "fact_type": t, "family": f} for i, (t, f) in enumerate(
        [("location", TEMPLATES_FAMILY)] * 50 + [("location", "relay")] * 50 + [("calls", "quiz")] * 5)]
    chosen = Counter((p["fact_type"], p["family"] == TEMPLATES_FAMILY) for p in select_probes(probes, 30))
    assert chosen[("calls", False)] == 5 and abs(chosen[("location", True)] - chosen[("location", False)]) <= 1
