"""One-call retrain (issue 9 part 4) end to end on CPU with a tiny model: v1 -> train ->
change the code (rename a function, add a parameter, add a class, delete a module) -> retrain
-> the diff names exactly those changes, the delta holds their facts plus replay, lineage
v1 -> v2, and `current` moves only when the policy holds (else the reason is recorded)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import wait_final
from graphtune.server.job_store import JobStatus
from graphtune.server.services import Services
from graphtune.tools.dataset.extract import run_extract
from graphtune.tools.dataset.params import ExtractParams
from graphtune.tools.graph.ingest import IngestParams, run_ingest

CORE_V1 = '''
def greet(name):
    """Say hello to someone."""
    return "hi " + name

def area(width, height):
    """Area of a rectangle."""
    return width * height

class Box:
    """A box that holds things."""
    def size(self):
        """How many things fit."""
        return 1
'''
CORE_V2 = '''
def welcome(name):
    """Say hello to someone."""
    return "hi " + name

def area(width, height, depth=1):
    """Area of a rectangle."""
    return width * height

class Box:
    """A box that holds things."""
    def size(self):
        """How many things fit."""
        return 1

class Crate:
    """A wooden crate."""
'''
EXTRA = '''
def legacy(value):
    """An old helper."""
    return value
'''
UTIL = "".join(f'def tool{i}(a, b):\n    """Tool number {i}."""\n    return a\n\n' for i in range(10))


def write_v1(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "__init__.py").write_text("")
    (root / "core.py").write_text(textwrap.dedent(CORE_V1))
    (root / "extra.py").write_text(textwrap.dedent(EXTRA))
    (root / "util.py").write_text(UTIL)


def change_to_v2(root: Path) -> None:
    (root / "core.py").write_text(textwrap.dedent(CORE_V2))
    (root / "extra.py").unlink()


def train_v1(services: Services, root: Path, tmp_path: Path) -> str:
    """Ingest v1, extract its knowledge dataset, train a tiny model a few steps, make it `current`."""
    from graphtune.tools.start_fine_tuning import submit_training
    from tiny_model import create_tiny_model, texts_from_jsonl

    settings = services.settings
    run_ingest(IngestParams(path=str(root), codebase="pkg"), settings)
    run_extract(ExtractParams(dataset_name="pkg-v1", objective="knowledge", augmentation_factor=2), settings)
    tiny = create_tiny_model(tmp_path / "tiny", texts_from_jsonl(settings.datasets_dir / "pkg-v1" / "train.jsonl"),
                             vocab_size=400, hidden=32)
    job = submit_training(services, {"dataset_name": "pkg-v1", "base_model": str(tiny), "output_name": "pkg-v1",
                                     "max_steps": 2, "batch_size": 4, "device": "cpu", "lora_rank": 4,
                                     "lora_alpha": 8, "evaluate_probes": False, "warmup": 0})
    done = wait_final(services.store, job.id, timeout=300)
    assert done.status is JobStatus.SUCCEEDED, done.error
    services.store.set_alias("current", "pkg-v1")
    return "pkg-v1"


async def _retrain(client, services: Services, **policy: float) -> list:
    started = await client.call_tool("retrain", {"codebase": "pkg", **policy})
    assert not started.is_error, started.content[0].text
    chain = started.structured_content
    assert [j["kind"] for j in chain["jobs"]] == ["ingest", "extract", "train", "compare", "promote"]
    assert chain["base_model"] == "pkg-v1" and chain["since_dataset"] == "pkg-v1"
    wait_final(services.store, chain["job_id"], timeout=600)
    jobs = services.store.chain_jobs(chain["chain_id"])
    assert [j.status for j in jobs] == [JobStatus.SUCCEEDED] * 5, [j.error for j in jobs]
    return jobs


@pytest.mark.slow
@pytest.mark.anyio
async def test_retrain_after_code_changes_keeps_or_moves_current_by_policy(client, services, tmp_path) -> None:
    settings = services.settings
    root = tmp_path / "pkg"
    write_v1(root)
    train_v1(services, root, tmp_path)
    change_to_v2(root)

    strict = await _retrain(client, services, min_new_accuracy=1.0)  # a tiny model after 2 steps knows nothing
    ingest, _extract, train, compare, promote = strict
    diff = {c["entity"]: c for c in ingest.result["diff"]["changes"]}
    assert ingest.result["entities_changed"] == {"added": 2, "removed": 2, "changed": 1, "affected": 0}
    assert {e: c["change"] for e, c in diff.items()} == {
        "pkg.core.welcome": "added", "pkg.core.Crate": "added", "pkg.core.greet": "removed",
        "pkg.extra.legacy": "removed", "pkg.core.area": "changed"}
    assert "signature" in diff["pkg.core.area"]["aspects"]
    assert ingest.result["diff"]["modules"]["removed"] == 1
    name = train.params["config"]["output_name"]
    meta = json.loads((settings.datasets_dir / name / "metadata.json").read_text())
    assert meta["parent"]["dataset"] == "pkg-v1"
    delta = meta["delta"]
    assert sorted(delta["added_entities"]) == ["pkg.core.Crate", "pkg.core.welcome"]
    assert sorted(delta["removed_entities"]) == ["pkg.core.greet", "pkg.extra.legacy"]
    assert delta["changed_entities"] == ["pkg.core.area"] and delta["facts"]["replayed"] > 0
    rows = [json.loads(line)["meta"] for line in (settings.datasets_dir / name / "train.jsonl").open()]
    taught = {(r["entity"], r["task"]): r["delta"] for r in rows}
    assert taught[("pkg.core.welcome", "location")] == taught[("pkg.core.Crate", "location")] == "new"
    assert taught[("pkg.core.area", "parameters")] == "changed"
    assert "replay" in taught.values() and not any(e in ("pkg.core.greet", "pkg.extra.legacy") for e, _ in taught)
    assert train.params["config"]["init_adapter"] == "pkg-v1" and compare.result["model_b"] == name
    assert promote.result["promoted"] is False and "kept on `pkg-v1`" in promote.result["reason"]
    assert "< 100.0% required" in promote.result["reason"]
    assert services.store.aliases() == {"current": "pkg-v1"}
    assert json.loads((settings.models_dir / name / "retrain.json").read_text())["promoted"] is False

    lenient = await _retrain(client, services, min_new_accuracy=0.0, max_old_drop=100.0)
    v2 = lenient[-1].result["model_name"]
    assert lenient[-1].result["promoted"] is True and services.store.aliases() == {"current": v2}
    assert lenient[0].result["entities_changed"] == {"added": 0, "removed": 0, "changed": 0, "affected": 0}
    models = {m["name"]: m for m in (await client.call_tool("list_models", {})).structured_content["models"]}
    assert models[v2]["parent_model"] == "pkg-v1" and models[v2]["aliases"] == ["current"]
    assert models[v2]["stale"] is False and models["pkg-v1"]["stale"] is True


@pytest.mark.anyio
async def test_retrain_refuses_bad_inputs_before_queueing(client, services, tmp_path) -> None:
    from test_model_registry import fake_model

    unknown = await client.call_tool("retrain", {"codebase": "pkg"})  # no `current` yet
    assert unknown.is_error and "base" in unknown.content[0].text
    fake_model(services.settings, "skills-model", dataset="nope")
    services.store.set_alias("current", "skills-model")
    not_knowledge = await client.call_tool("retrain", {"codebase": "pkg"})
    assert not_knowledge.is_error and "knowledge" in not_knowledge.content[0].text
    bad_policy = await client.call_tool("retrain", {"codebase": "pkg", "min_new_accuracy": 2})
    assert bad_policy.is_error and "min_new_accuracy" in bad_policy.content[0].text
    assert services.store.list()[1] == 0  # nothing queued


@pytest.mark.anyio
async def test_retrain_reports_a_broken_parent_metadata_json_as_a_coded_error(client, services) -> None:
    """The base model's dataset is read with catalog.parse_metadata: a truncated metadata.json is
    dataset_invalid naming the dataset and `base`, not an internal error, and nothing is queued."""
    from test_model_registry import fake_model

    fake_model(services.settings, "pkg-v1", dataset="pkg-v1")
    folder = services.settings.datasets_dir / "pkg-v1"
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text('{"objective": "knowl')
    services.store.set_alias("current", "pkg-v1")
    result = await client.call_tool("retrain", {"codebase": "pkg"})
    text = result.content[0].text
    assert result.is_error and "dataset_invalid" in text and "internal" not in text.lower(), text
    assert "`pkg-v1`" in text and "metadata.json" in text and "`base`" in text, text
    assert services.store.list()[1] == 0


@pytest.mark.anyio
async def test_cancelling_a_retrain_by_its_chain_id_leaves_no_step_behind(client, services, tmp_path) -> None:
    from conftest import wait_for
    from graphtune.tools.training.config import LoraJobConfig
    from tiny_model import create_tiny_model

    settings = services.settings
    root = tmp_path / "pkg"
    write_v1(root)
    run_ingest(IngestParams(path=str(root), codebase="pkg"), settings)
    run_extract(ExtractParams(dataset_name="pkg-v1", objective="knowledge", augmentation_factor=2), settings)
    tiny = create_tiny_model(tmp_path / "tiny", ["def greet(name): return name"] * 20, vocab_size=300, hidden=32)
    folder = settings.models_dir / "pkg-v1"  # a v1 model as the train job leaves it (weights never loaded here)
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    recipe = LoraJobConfig(base_model=str(tiny), dataset_name="pkg-v1", output_name="pkg-v1", device="cpu")
    (folder / "training_metadata.json").write_text(json.dumps({"base_model": str(tiny), "config": recipe.to_dict(),
                                                               "dataset": {"name": "pkg-v1"}}))
    services.store.set_alias("current", "pkg-v1")
    change_to_v2(root)
    chain = (await client.call_tool("retrain", {"codebase": "pkg"})).structured_content
    cancelled = await client.call_tool("cancel_job", {"job_id": chain["chain_id"], "force": True})
    assert not cancelled.is_error, cancelled.content[0].text
    wait_for(lambda: all(j.status.is_final for j in services.store.chain_jobs(chain["chain_id"])), timeout=60)
    statuses = [j.status for j in services.store.chain_jobs(chain["chain_id"])]
    assert statuses[0] in (JobStatus.CANCELLED, JobStatus.SUCCEEDED) and statuses[1:] == [JobStatus.CANCELLED] * 4
    assert services.store.aliases() == {"current": "pkg-v1"}


def _fake_v1(services: Services, tmp_path: Path, **recipe: object) -> None:
    """pkg v1 ingested and extracted, a v1 model folder as the train job leaves it (never loaded), `current`."""
    from graphtune.tools.training.config import LoraJobConfig

    settings = services.settings
    root = tmp_path / "pkg"
    write_v1(root)
    run_ingest(IngestParams(path=str(root), codebase="pkg"), settings)
    run_extract(ExtractParams(dataset_name="pkg-v1", objective="knowledge", augmentation_factor=2), settings)
    folder = settings.models_dir / "pkg-v1"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    config = LoraJobConfig(base_model=str(tmp_path / "base"), dataset_name="pkg-v1", output_name="pkg-v1",
                           device="cpu", **recipe)
    (folder / "training_metadata.json").write_text(json.dumps({"base_model": config.base_model,
                                                               "config": config.to_dict(),
                                                               "dataset": {"name": "pkg-v1"}}))
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")
    services.store.set_alias("current", "pkg-v1")
    change_to_v2(root)


def test_the_chain_continues_at_a_lower_lr_on_a_delta_with_a_large_replay_share(services, tmp_path) -> None:
    """The measured defaults against forgetting (bench/RESULTS.md, retrain on the GPU) reach the chain's
    extract and train steps; every one of them can be overridden."""
    from graphtune.tools.dataset.delta import DEFAULT_DELTA_REPEATS as DEFAULT_RETRAIN_DELTA_REPEATS
    from graphtune.tools.dataset.delta import DEFAULT_REPLAY_FRACTION as DEFAULT_RETRAIN_REPLAY_FRACTION
    from graphtune.tools.training.retrain import (
        CONTINUED_EPOCHS,
        CONTINUED_LR_FACTOR,
        ContinuedTraining,
        RetrainPolicy,
        plan_retrain,
    )

    _fake_v1(services, tmp_path, learning_rate=1e-3, num_epochs=10, lora_rank=64, lora_alpha=128.0, max_steps=200)
    steps, summary = plan_retrain(services.settings, "pkg", "current", RetrainPolicy())
    params = dict(steps)
    assert params["extract"]["replay_fraction"] == DEFAULT_RETRAIN_REPLAY_FRACTION == 1.0
    assert params["extract"]["delta_repeats"] == DEFAULT_RETRAIN_DELTA_REPEATS == 8
    train = params["train"]["config"]
    assert train["learning_rate"] == pytest.approx(CONTINUED_LR_FACTOR * 1e-3) == pytest.approx(3e-4)
    assert (train["num_epochs"], train["lora_rank"], train["lora_alpha"]) == (CONTINUED_EPOCHS, 64, 128.0) == \
        (3, 64, 128.0)  # the rest: v1's
    assert train["init_adapter"] == "pkg-v1"
    assert train.get("max_steps") is None  # v1's cap was for v1's data: the full-replay delta is larger
    assert summary["continued_training"] == {"replay_fraction": 1.0, "delta_repeats": 8,
                                             "learning_rate": train["learning_rate"], "num_epochs": 3}

    steps, summary = plan_retrain(services.settings, "pkg", "current", RetrainPolicy(),
                                  continued=ContinuedTraining(replay_fraction=0.2, learning_rate=1e-3, num_epochs=3))
    params = dict(steps)
    assert params["extract"]["replay_fraction"] == 0.2
    assert (params["train"]["config"]["learning_rate"], params["train"]["config"]["num_epochs"]) == (1e-3, 3)
    assert summary["continued_training"] == {"replay_fraction": 0.2, "delta_repeats": 1, "learning_rate": 1e-3,
                                             "num_epochs": 3}  # a sampled replay sets the ratio: no repeats


def test_the_chain_ingests_the_files_the_last_ingest_read(services, tmp_path) -> None:
    """exclude / languages of the last ingest carry over: files it left out are not taught as new code."""
    from graphtune.tools.training.retrain import RetrainPolicy, plan_retrain

    _fake_v1(services, tmp_path)
    run_ingest(IngestParams(path=str(tmp_path / "pkg"), codebase="pkg", exclude=["*/tests/*"], languages=["python"]),
               services.settings)
    steps, summary = plan_retrain(services.settings, "pkg", "current", RetrainPolicy())
    ingest = dict(steps)["ingest"]
    assert (ingest["exclude"], ingest["languages"]) == (["*/tests/*"], ["python"])
    assert summary["file_selection"] == {"exclude": ["*/tests/*"], "languages": ["python"],
                                         "max_file_bytes": 2_000_000}


@pytest.mark.anyio
async def test_retrain_tool_takes_the_continued_training_overrides(client, services, tmp_path) -> None:
    from conftest import wait_for

    _fake_v1(services, tmp_path, learning_rate=1e-3)
    bad = await client.call_tool("retrain", {"codebase": "pkg", "replay_fraction": 1.5})
    assert bad.is_error and "replay_fraction" in bad.content[0].text
    chain = (await client.call_tool("retrain", {"codebase": "pkg", "replay_fraction": 0.5, "learning_rate": 2e-4,
                                                "num_epochs": 2})).structured_content
    assert chain["continued_training"] == {"replay_fraction": 0.5, "delta_repeats": 1, "learning_rate": 2e-4,
                                           "num_epochs": 2}
    await client.call_tool("cancel_job", {"job_id": chain["chain_id"], "force": True})
    wait_for(lambda: all(j.status.is_final for j in services.store.chain_jobs(chain["chain_id"])), timeout=60)
    extract, train = services.store.chain_jobs(chain["chain_id"])[1:3]
    assert extract.params["replay_fraction"] == 0.5 and train.params["config"]["learning_rate"] == 2e-4
