"""Dataset extraction from a real ingested package: schema, splits, determinism, calibration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphtune.server.settings import Settings
from graphtune.tools.dataset.extract import run_extract
from graphtune.tools.dataset.params import ExtractParams
from graphtune.tools.dataset.quality import score
from graphtune.tools.errors import DatasetError, DatasetExists
from graphtune.tools.graph.ingest import IngestParams, run_ingest
from graphtune.tools.graph.records import CodeRecord


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_defaults_give_a_valid_dataset_split_by_file(email_graph: Settings) -> None:
    result = run_extract(ExtractParams(dataset_name="email-ds"), email_graph)
    folder = email_graph.datasets_dir / "email-ds"
    train, evals = _read(folder / "train.jsonl"), _read(folder / "eval.jsonl")
    assert result["train_examples"] == len(train) > 50 and result["eval_examples"] == len(evals) > 0
    for row in train + evals:
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant"] and all(m["content"].strip() for m in row["messages"])
        assert row["meta"]["quality"] >= 0.8
    train_files = {r["meta"]["file_path"] for r in train if r["meta"]["file_path"]}
    eval_files = {r["meta"]["file_path"] for r in evals if r["meta"]["file_path"]}
    assert train_files and eval_files and not train_files & eval_files
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["config"]["quality_threshold"] == 0.8 and meta["source"]["graph_fingerprint"]
    assert sum(meta["score_histogram"].values()) == meta["records_read"]
    assert not list(email_graph.datasets_dir.glob(".tmp-*"))


def test_same_seed_same_dataset_and_no_duplicate_examples(email_graph: Settings) -> None:
    run_extract(ExtractParams(dataset_name="a", seed=7), email_graph)
    run_extract(ExtractParams(dataset_name="b", seed=7), email_graph)
    a = (email_graph.datasets_dir / "a" / "train.jsonl").read_text()
    assert a == (email_graph.datasets_dir / "b" / "train.jsonl").read_text()
    rows = [json.dumps(r["messages"]) for r in _read(email_graph.datasets_dir / "a" / "train.jsonl")]
    assert len(rows) == len(set(rows))


def test_augmentation_multiplies(email_graph: Settings) -> None:
    one = run_extract(ExtractParams(dataset_name="x1", augmentation_factor=1, eval_fraction=0), email_graph)
    three = run_extract(ExtractParams(dataset_name="x3", augmentation_factor=3, eval_fraction=0), email_graph)
    assert one["train_examples"] == one["records_selected"]
    assert 2 * one["train_examples"] < three["train_examples"] <= 3 * one["train_examples"]
    tasks = {k.split(".")[1] for k in three["examples_by_task"]}
    assert {"explain", "implement"} <= tasks


def test_quality_filter_runs_before_the_cap(email_graph: Settings) -> None:
    capped = run_extract(ExtractParams(dataset_name="cap", max_records=100, eval_fraction=0), email_graph)
    assert capped["records_selected"] == 100
    rows = _read(email_graph.datasets_dir / "cap" / "train.jsonl")
    assert min(r["meta"]["quality"] for r in rows) >= 0.8


def test_existing_name_needs_overwrite_and_empty_result_is_an_error(email_graph: Settings) -> None:
    run_extract(ExtractParams(dataset_name="dup", max_records=100), email_graph)
    with pytest.raises(DatasetExists):
        run_extract(ExtractParams(dataset_name="dup", max_records=100), email_graph)
    run_extract(ExtractParams(dataset_name="dup", max_records=100, overwrite=True), email_graph)


def test_bare_code_gives_a_clear_empty_error_and_no_folder(settings: Settings, tmp_path: Path) -> None:
    settings.ensure_dirs()
    code = tmp_path / "bare"
    code.mkdir()
    (code / "m.py").write_text("".join(f"def f{i}(a, b):\n    return a + b * {i}\n\n" for i in range(30)))
    run_ingest(IngestParams(path=str(code)), settings)
    with pytest.raises(DatasetError, match="quality_threshold"):
        run_extract(ExtractParams(dataset_name="none", node_types=["Function"]), settings)
    assert not (settings.datasets_dir / "none").exists()


def test_alpaca_format(email_graph: Settings) -> None:
    run_extract(ExtractParams(dataset_name="alp", output_format="alpaca", max_records=100), email_graph)
    row = _read(email_graph.datasets_dir / "alp" / "train.jsonl")[0]
    assert set(row) == {"instruction", "input", "output", "meta"}


def _func(doc: str, params: list[str], source: str, ret: str = "") -> CodeRecord:
    return CodeRecord("Function", "m.f", "f", "m.py", doc, "def f(...)", params, ret, source)


def test_quality_calibration() -> None:
    documented = _func("Add two numbers and return their sum.\n\nArgs:\n    a: first addend.\n    b: second addend.\n"
                       "Returns:\n    The sum of a and b.", ["a: int", "b: int"], "def f(a, b):\n    return a + b", "int")
    untyped_but_documented = _func("Return the sum of ``a`` and ``b``; both must be numbers of the same kind.",
                                   ["a", "b"], "def f(a, b):\n    return a + b")
    bare = _func("", ["a", "b"], "def f(a, b):\n    return a + b")
    bare_typed = _func("", ["a: int", "b: int"], "def f(a: int, b: int) -> int:\n    return a + b", "int")
    assert score(documented) >= 0.8 and score(untyped_but_documented) >= 0.8
    assert score(bare) < 0.8 and score(bare_typed) < 0.8
    assert 0.0 <= score(bare) <= score(documented) <= 1.0


def test_graph_aware_tasks_use_relationships(email_graph: Settings) -> None:
    result = run_extract(ExtractParams(dataset_name="all-tasks", augmentation_factor=10, eval_fraction=0,
                                       quality_threshold=0.5), email_graph)
    tasks = {k.split(".")[1] for k in result["examples_by_task"]}
    assert {"calls", "callers", "methods", "locate", "signature"} <= tasks
    rows = _read(email_graph.datasets_dir / "all-tasks" / "train.jsonl")
    callers = [r for r in rows if r["meta"]["task"] == "callers"]
    assert any("email.parser.Parser.parsestr" in r["messages"][-1]["content"] for r in callers)
