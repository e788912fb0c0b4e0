"""Ingest -> extract -> list -> preview -> resources, through MCP tools only."""

from __future__ import annotations

import json

import pytest
from conftest import wait_final

pytestmark = pytest.mark.anyio


async def _run(client, services, tool: str, args: dict) -> dict:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    job = wait_final(services.store, result.structured_content["job_id"])
    status = (await client.call_tool("get_training_status", {"job_id": job.id, "detail": True})).structured_content
    assert status["status"] == "succeeded", status
    return status["result"]


async def test_graph_to_dataset_through_mcp(client, services) -> None:
    ingest = await _run(client, services, "ingest_codebase", {"package": "json"})
    assert ingest["files_parsed"] == 5 and ingest["files_failed"] == 0
    extracted = await _run(client, services, "extract_training_data", {"dataset_name": "json-ds", "max_records": 100})
    assert extracted["train_examples"] > 0

    listed = (await client.call_tool("list_datasets", {})).structured_content
    assert [d["name"] for d in listed["datasets"]] == ["json-ds"]
    preview = (await client.call_tool("preview_dataset", {"dataset_name": "json-ds", "limit": 2,
                                                          "include_metadata": True})).structured_content
    assert len(preview["records"]) == 2 and preview["metadata"]["name"] == "json-ds"

    again = await client.call_tool("extract_training_data", {"dataset_name": "json-ds"})
    assert again.is_error and "[dataset_exists]" in again.content[0].text and "overwrite" in again.content[0].text

    resources = await client.read_resource("graphtune://datasets")
    assert json.loads(resources.contents[0].text)[0]["name"] == "json-ds"
    meta = await client.read_resource("graphtune://datasets/json-ds")
    assert json.loads(meta.contents[0].text)["train_examples"] == extracted["train_examples"]
    samples = await client.read_resource("graphtune://datasets/json-ds/samples")
    assert json.loads(samples.contents[0].text)[0]["messages"]


async def test_missing_dataset_and_bad_paths(client) -> None:
    for name in ("nope", "../etc", "/abs", "a\x00b"):
        result = await client.call_tool("preview_dataset", {"dataset_name": name})
        assert result.is_error and "dataset_name" in result.content[0].text
    result = await client.call_tool("ingest_codebase", {"path": "/definitely/not/here"})
    assert result.is_error and "[invalid_argument]" in result.content[0].text and "path" in result.content[0].text


async def test_unfinished_code_base_is_refused_until_ingested_again(client, services, monkeypatch) -> None:
    """A code base whose last ingest was killed part-way (tests/integration/graph/test_ingest_crash.py kills
    real ones; its marker is written directly here) is refused by extraction, naming it and the fix,
    and readable again after the next ingest, which rebuilds it whole. validate_environment reads the
    store's counts, its code bases and their markers from one open."""
    from graphtune.tools.graph import sources, unfinished

    await _run(client, services, "ingest_codebase", {"package": "json"})
    unfinished.mark(services.settings.graph_dir, "json", "/somewhere/json", "job-killed")
    refused = await client.call_tool("extract_training_data", {"dataset_name": "json-ds", "codebases": ["json"]})
    text = refused.content[0].text
    assert refused.is_error and "[codebase_incomplete]" in text and "`json`" in text and "ingest_codebase" in text
    result = await client.call_tool("extract_training_data", {"dataset_name": "json-ds"})
    job = wait_final(services.store, result.structured_content["job_id"])
    assert job.status.value == "failed" and job.error["code"] == "codebase_incomplete", job.error
    opened = []

    class Counted(sources.EmbeddedGraph):
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            opened.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sources, "EmbeddedGraph", Counted)
    report = (await client.call_tool("validate_environment", {})).structured_content
    assert len(opened) == 1, opened
    assert [c["incomplete"] for c in report["codebases"]] == [True], report["codebases"]
    warning = next(c for c in report["checks"] if c["name"] == "graph:codebases")
    assert not warning["ok"] and not warning["required"] and "`json`" in warning["detail"], warning
    assert "ingest_codebase(path='/somewhere/json', codebase='json')" in warning["fix"] and report["ok"], report
    assert (await _run(client, services, "ingest_codebase", {"package": "json"}))["repaired"] is True
    report = (await client.call_tool("validate_environment", {})).structured_content
    assert [c["incomplete"] for c in report["codebases"]] == [False]
    assert not any(c["name"] == "graph:codebases" for c in report["checks"])
    assert (await _run(client, services, "extract_training_data", {"dataset_name": "json-ds"}))["train_examples"] > 0
