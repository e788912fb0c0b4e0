"""Model registry: aliases (promote_model), alias resolution, delete_model, lineage and the
stale flag in list_models, and compare_models on two tiny models through MCP."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import wait_final
from graphtune.server.job_store import JobStatus
from graphtune.server.settings import Settings
from graphtune.tools.dataset.extract import run_extract
from graphtune.tools.dataset.params import ExtractParams
from graphtune.tools.graph.ingest import IngestParams, run_ingest
from graphtune.tools.training.registry import model_dir, resolve_model_name
from test_graph_versions import V2, write_shop


def fake_model(settings: Settings, name: str, dataset: str | None = None, parent: str | None = None) -> Path:
    """A model folder as list_models/delete_model see it (no weights: these tools never load them)."""
    folder = settings.models_dir / name
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "training_metadata.json").write_text(json.dumps(
        {"name": name, "base_model": "tiny", "config": {"init_adapter": parent, "method": "lora"},
         "dataset": {"name": dataset}}))
    return folder


def _models(result) -> dict[str, dict]:  # noqa: ANN001
    assert not result.is_error, result.content[0].text
    return {m["name"]: m for m in result.structured_content["models"]}


@pytest.mark.anyio
async def test_promote_resolves_aliases_and_delete_refuses_an_aliased_model(client, services) -> None:
    settings = services.settings
    fake_model(settings, "m1")
    fake_model(settings, "m2", parent="m1")
    promoted = await client.call_tool("promote_model", {"model_name": "m1"})
    assert not promoted.is_error, promoted.content[0].text
    assert promoted.structured_content["alias"] == "current" and promoted.structured_content["previous_model"] is None
    assert resolve_model_name(settings, "current") == "m1" and model_dir(settings, "current").name == "m1"
    moved = (await client.call_tool("promote_model", {"model_name": "m2", "alias": "current"})).structured_content
    assert moved["previous_model"] == "m1" and moved["aliases"] == {"current": "m2"}
    await client.call_tool("promote_model", {"model_name": "current", "alias": "prod"})  # an alias of an alias
    listed = _models(await client.call_tool("list_models", {}))
    assert listed["m2"]["aliases"] == ["current", "prod"] and listed["m1"]["aliases"] == []
    assert listed["m2"]["parent_model"] == "m1"
    shadow = await client.call_tool("promote_model", {"model_name": "m2", "alias": "m1"})
    assert shadow.is_error and "alias" in shadow.content[0].text
    unknown = await client.call_tool("promote_model", {"model_name": "nope"})
    assert unknown.is_error and "model_unknown" in unknown.content[0].text

    refused = await client.call_tool("delete_model", {"model_name": "m2"})
    assert refused.is_error and "force" in refused.content[0].text and "current" in refused.content[0].text
    assert (settings.models_dir / "m2").is_dir()
    deleted = await client.call_tool("delete_model", {"model_name": "current", "force": True})
    assert not deleted.is_error, deleted.content[0].text
    assert deleted.structured_content["model_name"] == "m2"
    assert deleted.structured_content["aliases_removed"] == ["current", "prod"]
    assert not (settings.models_dir / "m2").exists() and services.store.aliases() == {}
    assert set(_models(await client.call_tool("list_models", {}))) == {"m1"}
    plain = await client.call_tool("delete_model", {"model_name": "m1"})
    assert not plain.is_error and not (settings.models_dir / "m1").exists()
    gone = await client.call_tool("evaluate_model", {"model_name": "current"})
    assert gone.is_error and "model_name" in gone.content[0].text


@pytest.mark.anyio
async def test_a_merged_model_can_be_deleted_and_adapter_tools_name_its_adapter(client, services) -> None:
    """merge_adapter's output is a full model (config.json, no adapter): delete_model takes it; a tool
    that needs an adapter says which one it was merged from instead of 'no finished model'."""
    settings = services.settings
    fake_model(settings, "m1")
    folder = settings.models_dir / "m1-merged"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "merge_metadata.json").write_text(json.dumps({"merged_from": "m1"}))
    services.store.register_model({"name": "m1-merged", "job_id": None, "base_model": "tiny", "dataset": None,
                                   "method": "merged", "created_at": 0.0, "path": str(folder),
                                   "metrics": {"merged_from": "m1"}})
    refused = await client.call_tool("evaluate_model", {"model_name": "m1-merged"})
    assert refused.is_error and "merged model" in refused.content[0].text and "`m1`" in refused.content[0].text
    deleted = await client.call_tool("delete_model", {"model_name": "m1-merged"})
    assert not deleted.is_error, deleted.content[0].text
    assert not folder.exists() and set(_models(await client.call_tool("list_models", {}))) == {"m1"}


@pytest.mark.anyio
async def test_delete_refuses_a_model_a_queued_job_uses(client, services) -> None:
    services.runner.dispatch = lambda: []  # type: ignore[method-assign]  # keep the job queued
    fake_model(services.settings, "busy")
    services.runner.submit("evaluate", {"model_name": "busy", "dataset_name": "x"})
    refused = await client.call_tool("delete_model", {"model_name": "busy", "force": True})
    assert refused.is_error and "job_" in refused.content[0].text
    assert (services.settings.models_dir / "busy").is_dir()


@pytest.mark.anyio
async def test_delete_refuses_a_model_a_queued_ask_loads_through_its_alias(client, services) -> None:
    """ask_model names the model it loads by its real name (an alias resolved when queued), as the
    other model jobs do: delete_model's in-use check and the job's resources see that name."""
    services.runner.dispatch = lambda: []  # type: ignore[method-assign]  # keep the job queued
    fake_model(services.settings, "busy")
    await client.call_tool("promote_model", {"model_name": "busy"})
    asked = await client.call_tool("ask_model", {"model": "current", "prompt": "hi", "wait_seconds": 0})
    assert not asked.is_error, asked.content[0].text
    [job] = services.store.list(status="queued", limit=10)[0]
    assert job.params["adapter"] == "busy"
    refused = await client.call_tool("delete_model", {"model_name": "busy", "force": True})
    assert refused.is_error and job.id in refused.content[0].text
    assert (services.settings.models_dir / "busy").is_dir()


@pytest.mark.anyio
async def test_list_models_flags_a_model_stale_after_a_reingest_with_changes(client, services, tmp_path) -> None:
    settings = services.settings
    root = write_shop(tmp_path / "shop")
    run_ingest(IngestParams(path=str(root), codebase="shop"), settings)
    run_extract(ExtractParams(dataset_name="shop-v1", objective="knowledge"), settings)
    fake_model(settings, "shop-model", dataset="shop-v1")
    fresh = _models(await client.call_tool("list_models", {}))["shop-model"]
    assert fresh["stale"] is False and fresh["entities_changed_since"] == 0 and set(fresh["graph_versions"]) == {"shop"}
    run_ingest(IngestParams(path=str(root), codebase="shop"), settings)  # unchanged code: still fresh
    assert _models(await client.call_tool("list_models", {}))["shop-model"]["stale"] is False
    (root / "cart.py").write_text(textwrap.dedent(V2))
    run_ingest(IngestParams(path=str(root), codebase="shop"), settings)
    stale = _models(await client.call_tool("list_models", {}))["shop-model"]
    assert stale["stale"] is True and stale["entities_changed_since"] == 4  # 1 added, 1 removed, 2 changed
    fake_model(settings, "no-dataset")
    assert _models(await client.call_tool("list_models", {}))["no-dataset"]["stale"] is None


def _tiny_adapter(settings: Settings, tiny: Path, name: str, dataset: str, seed: int) -> None:
    """A real (untrained, randomly initialised) LoRA adapter on the tiny model: fast, and loadable."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    folder = settings.models_dir / name
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(folder)
    (folder / "training_metadata.json").write_text(json.dumps(
        {"name": name, "base_model": str(tiny), "config": {"method": "lora"}, "dataset": {"name": dataset}}))


@pytest.mark.slow
@pytest.mark.anyio
async def test_compare_models_on_two_tiny_models_through_mcp(client, services, tmp_path) -> None:
    from tiny_model import create_tiny_model, texts_from_jsonl

    settings = services.settings
    root = write_shop(tmp_path / "shop")
    run_ingest(IngestParams(path=str(root), codebase="shop"), settings)
    run_extract(ExtractParams(dataset_name="shop-v1", objective="knowledge", augmentation_factor=2), settings)
    (root / "cart.py").write_text(textwrap.dedent(V2))
    run_ingest(IngestParams(path=str(root), codebase="shop"), settings)
    run_extract(ExtractParams(dataset_name="shop-v2", objective="knowledge", augmentation_factor=2,
                              since="shop-v1"), settings)
    tiny = create_tiny_model(tmp_path / "tiny", texts_from_jsonl(settings.datasets_dir / "shop-v1" / "train.jsonl"),
                             vocab_size=400, hidden=32)
    _tiny_adapter(settings, tiny, "shop-a", "shop-v1", seed=1)
    _tiny_adapter(settings, tiny, "shop-b", "shop-v2", seed=2)
    await client.call_tool("promote_model", {"model_name": "shop-a"})
    started = await client.call_tool("compare_models", {"model_a": "current", "model_b": "shop-b",
                                                        "dataset_name": "shop-v2", "max_probes": 12, "device": "cpu"})
    assert not started.is_error, started.content[0].text
    job = wait_final(services.store, started.structured_content["job_id"], timeout=300)
    assert job.status == JobStatus.SUCCEEDED, job.error
    result = job.result
    assert result["model_a"] == "shop-a" and result["model_b"] == "shop-b" and result["probes"] == 12
    rows = {row["fact_type"]: row for row in result["by_fact_type"]}
    assert rows["all"]["probes"] == 12 and sum(r["probes"] for k, r in rows.items() if k != "all") == 12
    assert all(0 <= (r["a"] or 0) <= 1 and 0 <= (r["b"] or 0) <= 1 for r in rows.values())
    statuses = {row["status"] for row in result["by_status"]}
    assert {"unchanged", "all"} <= statuses and statuses & {"new", "changed"}
    evaluated = await client.call_tool("evaluate_model", {"model_name": "current", "dataset_name": "shop-v2",
                                                          "max_probes": 12, "include_base": False, "device": "cpu"})
    assert not evaluated.is_error, evaluated.content[0].text
    job = wait_final(services.store, evaluated.structured_content["job_id"], timeout=300)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.params["model_name"] == "shop-a"  # the alias resolved before queueing
    assert set(job.result["tuned_by_status"]) >= {"unchanged"} and sum(
        v["probes"] for v in job.result["tuned_by_status"].values()) == 12
    report = json.loads((settings.models_dir / "shop-a" / "evaluations" / "shop-v2.json").read_text())
    assert report["tuned"]["by_status"] == job.result["tuned_by_status"]
    same = await client.call_tool("compare_models", {"model_a": "current", "model_b": "shop-a",
                                                     "dataset_name": "shop-v2"})
    assert same.is_error and "model_b" in same.content[0].text
    no_probes = await client.call_tool("compare_models", {"model_a": "shop-a", "model_b": "shop-b",
                                                          "dataset_name": "nope"})
    assert no_probes.is_error and "dataset_name" in no_probes.content[0].text


@pytest.mark.anyio
async def test_resume_refuses_a_job_whose_output_name_was_taken_since(client, services, memo_dataset, tiny_model) -> None:
    """A cancelled job's output_name is free (no folder), so another model may take it; resuming then
    trained to the end and failed `dataset_exists` with a hint to pass overwrite=true (no such parameter)."""
    from graphtune.tools.start_fine_tuning import submit_training

    services.runner.dispatch = lambda: []  # type: ignore[method-assign]  # keep the job queued, then cancel it
    job = submit_training(services, {"dataset_name": memo_dataset, "base_model": str(tiny_model), "device": "cpu",
                                     "output_name": "r1"})
    await client.call_tool("cancel_job", {"job_id": job.id})
    fake_model(services.settings, "r1")  # another job (or a copy) made `r1` meanwhile
    refused = await client.call_tool("resume_fine_tuning", {"job_id": job.id})
    text = refused.content[0].text
    assert refused.is_error and "[job_state_conflict]" in text and "delete_model('r1')" in text
    assert services.store.get(job.id).status.value == "cancelled"


@pytest.mark.anyio
async def test_the_model_resource_reads_a_merged_model_that_graphtune_models_lists(client, services) -> None:
    """graphtune://models lists merged models; graphtune://models/{name} refused one as 'not an adapter'."""
    settings = services.settings
    fake_model(settings, "m1")
    folder = settings.models_dir / "m1-merged"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "merge_metadata.json").write_text(json.dumps({"merged_from": "m1", "base_model": "tiny"}))
    services.store.register_model({"name": "m1-merged", "job_id": None, "base_model": "tiny", "dataset": None,
                                   "method": "merged", "created_at": 0.0, "path": str(folder),
                                   "metrics": {"merged_from": "m1"}})
    listed = json.loads((await client.read_resource("graphtune://models")).contents[0].text)
    assert "m1-merged" in {m["name"] for m in listed}
    read = json.loads((await client.read_resource("graphtune://models/m1-merged")).contents[0].text)
    assert read["merged_from"] == "m1"


@pytest.mark.anyio
async def test_resume_refuses_a_job_whose_init_adapter_was_deleted_since(client, services, memo_dataset,
                                                                        tiny_model) -> None:
    """delete_model may remove the model a stopped job continues (nothing runs); resuming then failed in the
    worker, after the job was requeued, with model_unknown."""
    from graphtune.tools.start_fine_tuning import submit_training

    fake_model(services.settings, "parent")
    services.runner.dispatch = lambda: []  # type: ignore[method-assign]  # keep the job queued, then cancel it
    job = submit_training(services, {"dataset_name": memo_dataset, "base_model": str(tiny_model), "device": "cpu",
                                     "output_name": "child", "init_adapter": "parent"})
    await client.call_tool("cancel_job", {"job_id": job.id})
    assert not (await client.call_tool("delete_model", {"model_name": "parent"})).is_error
    refused = await client.call_tool("resume_fine_tuning", {"job_id": job.id})
    text = refused.content[0].text
    assert refused.is_error and "[job_state_conflict]" in text and "`parent` (init_adapter)" in text
    assert services.store.get(job.id).status.value == "cancelled"
