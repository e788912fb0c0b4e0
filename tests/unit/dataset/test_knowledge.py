"""Knowledge datasets (facts in many phrasings, held-out probes), probe scoring, and the
closed-book evaluation at the end of training / through evaluate_model."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from conftest import wait_final
from graphtune.server.job_store import JobStatus
from graphtune.server.settings import Settings
from graphtune.tools.dataset.extract import run_extract
from graphtune.tools.dataset.params import ExtractParams
from graphtune.tools.dataset.phrasings import PHRASINGS
from graphtune.tools.dataset.probe_scoring import score_answer, summarize
from graphtune.tools.graph.ingest import IngestParams, run_ingest
from graphtune.tools.training.presets import PRESETS, apply_preset


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().split("\n") if line]  # not splitlines: \x1c etc.


def _public_functions_by_ast() -> dict[str, list[str]]:
    """Independent truth: every public module-level function of `email` and its parameter names."""
    import email

    root = Path(email.__file__).parent
    found = {}
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        rel = path.relative_to(root.parent).with_suffix("")
        module = ".".join(p for p in rel.parts if p != "__init__")
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                a = node.args
                names = [x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]]
                names += [x.arg for x in (a.vararg, a.kwarg) if x]
                found[f"{module}.{node.name}"] = names
    return found


def test_every_public_function_has_its_parameters_in_three_phrasings(email_graph: Settings) -> None:
    result = run_extract(ExtractParams(dataset_name="k", objective="knowledge"), email_graph)
    folder = email_graph.datasets_dir / "k"
    train = _read(folder / "train.jsonl")
    by_entity: dict[str, list[dict]] = {}
    for row in train:
        by_entity.setdefault(row["meta"]["entity"], []).append(row)
    truth = _public_functions_by_ast()
    assert len(truth) > 80
    for qualified, names in truth.items():
        rows = [r for r in by_entity.get(qualified, []) if r["meta"]["task"] == "parameters"]
        questions = {r["messages"][-2]["content"] for r in rows}
        assert len(questions) >= 3, f"{qualified}: {len(questions)} parameter phrasings"
        for row in rows:
            answer = row["messages"][-1]["content"]
            assert all(f"`{n}" in answer or f"`*{n}" in answer or f"`**{n}" in answer for n in names) \
                or (not names and "no " in answer), (qualified, answer)
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["objective"] == "knowledge" and meta["phrasings_per_fact"] == 8
    assert meta["facts_by_type"]["location"] == meta["entities"]  # every entity, documented or not
    assert result["probes"] == len(_read(folder / "probes.jsonl")) > 200
    # undocumented entities are facts too: the quality gate does not apply
    assert meta["entities_by_kind"]["method"] > 150


def test_probes_use_only_held_out_phrasings_and_name_no_answer(email_graph: Settings) -> None:
    run_extract(ExtractParams(dataset_name="k", objective="knowledge", augmentation_factor=12), email_graph)
    folder = email_graph.datasets_dir / "k"
    train_questions = {r["messages"][-2]["content"] for r in _read(folder / "train.jsonl")}
    probes = _read(folder / "probes.jsonl")
    for fact_type, table in PHRASINGS.items():
        assert not set(table.train) & set(table.probe), fact_type
    assert not {p["question"] for p in probes} & train_questions
    for probe in probes:
        if probe["fact_type"] == "location":
            assert probe["gold"]["module"] not in probe["question"].replace(f"`{probe['gold']['module']}.", "")
            assert not score_answer(probe["question"], probe["gold"])[0], probe["question"]
    evals = _read(folder / "eval.jsonl")
    assert evals and not {r["messages"][-2]["content"] for r in evals} & train_questions
    assert {p["fact_type"] for p in probes} >= {"location", "parameters", "bases", "methods"}
    # each probe records the held-out template it was asked in (accuracy per template in the bench),
    # and every held-out template of the call directions is asked
    assert all(p["template"] in PHRASINGS[p["fact_type"]].probe for p in probes)
    for fact_type in ("calls", "callers"):
        assert {p["template"] for p in probes if p["fact_type"] == fact_type} == set(PHRASINGS[fact_type].probe)


def test_private_names_only_on_request(email_graph: Settings) -> None:
    run_extract(ExtractParams(dataset_name="pub", objective="knowledge", augmentation_factor=1), email_graph)
    run_extract(ExtractParams(dataset_name="all", objective="knowledge", augmentation_factor=1,
                              include_private=True), email_graph)
    pub = {r["meta"]["entity"] for r in _read(email_graph.datasets_dir / "pub" / "train.jsonl")
           if r["meta"]["kind"] != "module"}
    every = {r["meta"]["entity"] for r in _read(email_graph.datasets_dir / "all" / "train.jsonl")
             if r["meta"]["kind"] != "module"}
    assert not any(re.search(r"\._[a-z]\w*$", e) for e in pub)
    assert any(re.search(r"\._[a-z]\w*$", e) for e in every) and pub < every


@pytest.mark.parametrize(("answer", "gold", "correct"), [
    ("`parseaddr` is defined in the module `email.utils` (file `email/utils.py`).",
     {"kind": "module", "module": "email.utils", "file": "email/utils.py"}, True),
    ("It lives in email/utils.py.", {"kind": "module", "module": "email.utils", "file": "email/utils.py"}, True),
    ("It is in `email.message`.", {"kind": "module", "module": "email.utils", "file": "email/utils.py"}, False),
    ("`email.utils.parseaddr` comes from `email`.", {"kind": "module", "module": "email", "file": "email/__init__.py"},
     True),
    ("It is defined in `email.utils`.", {"kind": "module", "module": "email", "file": "email/__init__.py"}, False),
    ("`parseaddr` accepts `addr` and `strict = True`.", {"kind": "names", "names": ["addr", "strict"], "required": 2},
     True),
    ("`parseaddr` accepts `addr`.", {"kind": "names", "names": ["addr", "strict"], "required": 2}, False),
    ("Two methods: `Message.get_payload` and `attach`.",
     {"kind": "names", "names": ["get_payload", "attach", "walk"], "required": 2}, True),
    ("It has a method called payload.", {"kind": "names", "names": ["get_payload", "attach"], "required": 2}, False),
    ("", {"kind": "names", "names": ["x"], "required": 1}, False),
])
def test_probe_scoring_on_hand_written_answers(answer: str, gold: dict, correct: bool) -> None:
    assert score_answer(answer, gold)[0] is correct


def test_summary_counts_per_fact_type() -> None:
    rows = [{"fact_type": "location", "correct": True, "ended": True},
            {"fact_type": "location", "correct": False, "ended": False},
            {"fact_type": "bases", "correct": True, "ended": True}]
    summary = summarize(rows)
    assert summary["accuracy"] == round(2 / 3, 4) and summary["ended_cleanly"] == round(2 / 3, 4)
    assert summary["by_fact_type"]["location"] == {"accuracy": 0.5, "probes": 2}


def test_knowledge_preset_fills_only_what_was_left_out() -> None:
    resolved = apply_preset({"dataset_name": "d", "base_model": "m", "lora_rank": 8}, "knowledge")
    assert resolved["preset"] == "knowledge" and resolved["lora_rank"] == 8
    assert resolved["target_modules"] == "all-linear" and resolved["num_epochs"] == PRESETS["knowledge"]["num_epochs"] > 3
    assert apply_preset({"dataset_name": "d", "base_model": "m"}, "skills")["preset"] == "default"
    assert apply_preset({"dataset_name": "d", "base_model": "m", "preset": "default"}, "knowledge").get(
        "lora_rank") is None


@pytest.mark.slow
@pytest.mark.anyio
async def test_training_on_knowledge_data_evaluates_probes_and_evaluate_model_reruns(client, services, tmp_path):
    from tiny_model import create_tiny_model, texts_from_jsonl

    settings = services.settings
    settings.ensure_dirs()
    run_ingest(IngestParams(package="json"), settings)
    run_extract(ExtractParams(dataset_name="json-facts", objective="knowledge", augmentation_factor=2), settings)
    folder = settings.datasets_dir / "json-facts"
    tiny = create_tiny_model(tmp_path / "tiny", texts_from_jsonl(folder / "train.jsonl"), vocab_size=600, hidden=64)
    started = await client.call_tool("start_fine_tuning", {
        "dataset_name": "json-facts", "base_model": str(tiny), "num_epochs": 1, "max_steps": 3, "device": "cpu",
        "output_name": "json-facts-tiny", "max_probes": 24})
    assert not started.is_error, started.content[0].text
    job = wait_final(services.store, started.structured_content["job_id"], timeout=300)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.params["config"]["preset"] == "knowledge" and job.params["config"]["lora_rank"] == 64
    knowledge = job.result["knowledge"]
    assert knowledge["probes"] > 0 and 0 <= knowledge["tuned_accuracy"] <= 1
    assert set(knowledge["tuned_by_fact_type"]) >= {"location"} and knowledge["base_accuracy"] is not None
    assert job.result["tokens_per_second"] > 0
    verdict = job.result["verdict"]  # issue 22: the verdict is in the result, and in the concise status view
    assert verdict["accuracy"]["probes"] == knowledge["probes"] and verdict["trust"]["verdict"] in ("trust",
                                                                                                   "do_not_trust")
    assert [s["tool"] for s in verdict["next_steps"]][:2] == ["ask_model", "evaluate_model"]
    status = await client.call_tool("get_training_status", {"job_id": job.id})
    assert status.structured_content["result"]["verdict"] == verdict
    model = settings.models_dir / "json-facts-tiny"
    answers = _read(model / "probe_answers.jsonl")
    assert len(answers) == knowledge["probes"] == 24 and {"base_answer", "tuned_answer", "ended"} <= set(answers[0])
    assert "Closed-book knowledge" in (model / "README.md").read_text()
    listed = await client.call_tool("list_models", {})
    entry = next(m for m in listed.structured_content["models"] if m["name"] == "json-facts-tiny")
    assert entry["knowledge_accuracy"] == knowledge["tuned_accuracy"]

    evaluated = await client.call_tool("evaluate_model", {"model_name": "json-facts-tiny", "max_probes": 10,
                                                          "device": "cpu"})
    assert not evaluated.is_error, evaluated.content[0].text
    job = wait_final(services.store, evaluated.structured_content["job_id"], timeout=300)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.result["probes"] == 10 and (model / "evaluations" / "json-facts.json").is_file()
    assert job.result["verdict"]["accuracy"]["probes"] == 10 and job.result["verdict"]["next_steps"]
    resource = await client.read_resource("graphtune://models/json-facts-tiny/evaluation")
    assert json.loads(resource.contents[0].text)["evaluations"]["json-facts"]["probes"] == 10


@pytest.mark.anyio
async def test_evaluate_model_refuses_an_unknown_model(client) -> None:
    unknown = await client.call_tool("evaluate_model", {"model_name": "nope"})
    assert unknown.is_error and "model_name" in unknown.content[0].text


def test_the_dataset_does_not_depend_on_the_order_the_store_returns_records(email_graph: Settings) -> None:
    """A parallel ingest writes nodes in the order its parser processes finish, so the store returns
    records in a varying order; the same graph must still give the same training rows and probes."""
    import random

    from graphtune.tools.dataset.entities import build_entities
    from graphtune.tools.dataset.knowledge import build
    from graphtune.tools.dataset.knowledge_extract import _read_records

    params = ExtractParams(dataset_name="order", objective="knowledge")
    records = _read_records(email_graph.graph_backend, email_graph, params, None)[0]
    shuffled = list(records)
    random.Random(7).shuffle(shuffled)
    built = [build(*build_entities(rs, include_private=False), phrasings_per_fact=4, profiles_per_entity=1, seed=0)
             for rs in (records, shuffled, shuffled[::-1])]
    assert built[0].train == built[1].train == built[2].train
    assert built[0].probes == built[1].probes == built[2].probes
