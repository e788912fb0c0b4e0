"""What an agent reads against what the tools do (review of 2026-12-05): a description's default is
the default the code applies, and a list shows a finished job the way its status view does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.anyio


async def _call(client: Any, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def _ingest(client: Any, folder: Path) -> dict[str, Any]:
    job = await _call(client, "ingest_codebase", {"path": str(folder)})
    view = await _call(client, "get_training_status", {"job_id": job["job_id"], "wait_seconds": 50})
    assert view["status"] == "succeeded", view["error"]
    return view


async def test_graph_diff_without_since_diffs_against_the_version_before_the_current_one(client, tmp_path) -> None:
    """tools/list said 'default the code base's first ingest'; the code diffs the last ingest only,
    so an agent asking 'what changed since I first ingested' silently got a shorter list."""
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "a.py").write_text("def one():\n    return 1\n")
    await _ingest(client, folder)
    (folder / "b.py").write_text("def two():\n    return 2\n")
    await _ingest(client, folder)
    (folder / "c.py").write_text("def three():\n    return 3\n")
    await _ingest(client, folder)

    tools = {t.name: t for t in (await client.list_tools()).tools}
    described = tools["graph_diff"].input_schema["properties"]["since"]["description"]
    assert "first ingest" not in described and "before the current one" in described
    diff = await _call(client, "graph_diff", {"codebase": "shop"})
    versions = [v["version"] for v in diff["versions"]]
    assert len(versions) == 3 and diff["since"] == versions[-2] and diff["until"] == versions[-1]
    assert [c["entity"] for c in diff["changes"]] == ["c.three"]


async def test_list_jobs_shows_a_finished_job_as_its_status_view_does(client, tmp_path) -> None:
    """list_jobs showed a succeeded ingest's last stage ("recording the graph version and its diff")
    and a succeeded extraction's ("writing") with percent null, where get_training_status says
    "finished: the ... job succeeded" at 100 %: an agent scanning the list read finished jobs as busy."""
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "a.py").write_text('def one():\n    """One."""\n    return 1\n')
    ingest = await _ingest(client, folder)
    job = await _call(client, "extract_training_data", {"dataset_name": "shop-facts", "objective": "knowledge"})
    extract = await _call(client, "get_training_status", {"job_id": job["job_id"], "wait_seconds": 50})
    assert extract["status"] == "succeeded", extract["error"]
    listed = {j["job_id"]: j for j in (await _call(client, "list_jobs", {}))["jobs"]}
    for view in (ingest, extract):
        assert listed[view["job_id"]]["progress"] == view["progress"]
        assert view["progress"]["message"] == f"finished: the {view['kind']} job succeeded"
    assert listed[extract["job_id"]]["progress"]["percent"] == 100.0


async def test_retrain_of_an_unknown_code_base_names_the_ones_it_can_repeat(client, services, tmp_path) -> None:
    """retrain(codebase=<typo>) said 'Ingest it once ..., or pass its folder': retrain takes no folder,
    and the reply did not say which code bases it could retrain, so the typo could not be fixed from it."""
    import json

    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "a.py").write_text('def one():\n    """One."""\n    return 1\n')
    await _ingest(client, folder)
    job = await _call(client, "extract_training_data", {"dataset_name": "shop-facts", "objective": "knowledge"})
    assert (await _call(client, "get_training_status", {"job_id": job["job_id"], "wait_seconds": 50}))["status"] \
        == "succeeded"
    model = services.settings.models_dir / "shop-v1"  # a model folder as the registry sees it (no weights needed)
    model.mkdir(parents=True)
    (model / "adapter_config.json").write_text("{}")
    (model / "training_metadata.json").write_text(json.dumps({"name": "shop-v1", "base_model": "tiny",
                                                              "dataset": {"name": "shop-facts"}}))
    await _call(client, "promote_model", {"model_name": "shop-v1"})

    refused = await client.call_tool("retrain", {"codebase": "shpo"})
    text = refused.content[0].text
    assert refused.is_error and text.startswith("[invalid_argument]") and "(field `codebase`)" in text
    assert "shop" in text.split("Hint:")[0] and "folder" not in text.split("Hint:")[1]


async def test_resume_describes_the_job_states_it_accepts(client, services) -> None:
    """tools/list said resume takes a 'cancelled or interrupted' job; it also resumes a failed one (an
    out-of-memory run keeps its checkpoints), which an agent reading the description never tried."""
    from graphtune.server.job_store import JobStatus

    job = services.store.create("train", {"config": {}}, heavy=True)
    services.store.finish(job.id, JobStatus.SUCCEEDED, result={})
    refused = await client.call_tool("resume_fine_tuning", {"job_id": job.id})
    assert refused.is_error and "only failed, cancelled or interrupted jobs resume" in refused.content[0].text
    tools = {t.name: t for t in (await client.list_tools()).tools}
    described = tools["resume_fine_tuning"].input_schema["properties"]["job_id"]["description"]
    assert all(state in described for state in ("failed", "cancelled", "interrupted")), described


async def test_list_datasets_says_which_datasets_have_probes(client, tmp_path) -> None:
    """evaluate_model, compare_models and retrain need a knowledge dataset with probes, but list_datasets
    did not say which dataset was one: an agent had to preview each with include_metadata to find out."""
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "a.py").write_text('def one():\n    """Return one, the first number."""\n    return 1\n')
    await _ingest(client, folder)
    for args in ({"dataset_name": "shop-facts", "objective": "knowledge"},
                 {"dataset_name": "shop-skills", "quality_threshold": 0.0}):
        job = await _call(client, "extract_training_data", args)
        view = await _call(client, "get_training_status", {"job_id": job["job_id"], "wait_seconds": 50})
        assert view["status"] == "succeeded", view["error"]
    listed = {d["name"]: d for d in (await _call(client, "list_datasets", {}))["datasets"]}
    assert listed["shop-facts"]["objective"] == "knowledge" and listed["shop-facts"]["probes"] > 0
    assert listed["shop-skills"]["objective"] == "skills" and listed["shop-skills"]["probes"] is None
