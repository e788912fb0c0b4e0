"""The MCP surface through the in-memory client: tools, annotations, errors, both protocol eras."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {"validate_environment", "get_training_status", "list_jobs", "cancel_job", "ingest_codebase",
                  "extract_training_data", "list_datasets", "preview_dataset", "start_fine_tuning",
                  "resume_fine_tuning", "list_models", "merge_adapter", "export_model", "list_base_models", "ask_model"}


async def test_every_tool_is_listed_with_annotations_and_descriptions(client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert EXPECTED_TOOLS <= set(tools)
    for tool in tools.values():
        ann = tool.annotations
        assert ann is not None and ann.read_only_hint is not None
        if not ann.read_only_hint:  # MCP defines these only for tools that are not read-only
            assert ann.destructive_hint is not None and ann.idempotent_hint in (True, None), tool.name
        assert tool.description and len(tool.description) > 30
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert prop.get("description"), f"{tool.name}.{name} lacks a description"
    assert tools["get_training_status"].annotations.read_only_hint is True
    assert tools["cancel_job"].annotations.destructive_hint is True
    assert tools["cancel_job"].annotations.idempotent_hint is True
    assert tools["start_fine_tuning"].annotations.idempotent_hint is None  # MCP's default: not idempotent


async def test_validate_environment_reports_checks(client) -> None:
    result = await client.call_tool("validate_environment", {})
    assert not result.is_error
    report = result.structured_content
    names = {c["name"] for c in report["checks"]}
    assert {"python", "package:mcp", "torch", "device:cuda", "qlora", "folder:datasets", "graph:embedded"} <= names
    assert report["device"] in ("cpu", "cuda", "mps")
    failed = [c for c in report["checks"] if not c["ok"] and c["required"]]  # optional ones (qlora) only warn
    assert report["ok"] == (not failed)


async def test_unknown_job_is_a_clear_error(client) -> None:
    result = await client.call_tool("get_training_status", {"job_id": "job_0123456789ab"})
    assert result.is_error
    text = result.content[0].text
    assert "[job_not_found]" in text and "list_jobs" in text


async def test_bad_argument_names_the_field(client) -> None:
    result = await client.call_tool("list_jobs", {"limit": 0})
    assert result.is_error and "limit" in result.content[0].text
    result = await client.call_tool("extract_training_data", {"dataset_name": "../escape"})
    assert result.is_error and "dataset_name" in result.content[0].text


async def test_job_status_through_mcp(client, services) -> None:
    job = services.runner.submit("sleep", {"steps": 2, "step_s": 0.01})
    from conftest import wait_final

    wait_final(services.store, job.id)
    status = (await client.call_tool("get_training_status", {"job_id": job.id})).structured_content
    assert status["status"] == "succeeded" and status["latest_metrics"] == {"step": 2}
    listed = (await client.call_tool("list_jobs", {"status": "succeeded"})).structured_content
    assert [j["job_id"] for j in listed["jobs"]] == [job.id]
    cancel = await client.call_tool("cancel_job", {"job_id": job.id})
    assert cancel.is_error and "[job_state_conflict]" in cancel.content[0].text


async def test_legacy_handshake(settings, services) -> None:
    from graphtune.server.app import create_app
    from mcp.client import Client

    async with Client(create_app(settings, services), mode="legacy") as legacy:
        assert EXPECTED_TOOLS <= {t.name for t in (await legacy.list_tools()).tools}


def test_server_start_does_not_import_heavy_packages(tmp_path) -> None:
    code = ("import sys; from graphtune.server.app import create_app; from graphtune.server.settings import Settings;"
            f"create_app(Settings(home={str(tmp_path)!r}));"
            "heavy = [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes', 'ladybug', 'neo4j') if m in sys.modules];"
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def test_a_held_status_reply_comes_when_the_job_ends(client, services) -> None:
    """`wait_seconds` holds the reply until the job ends (one call instead of many polls), and
    never past its limit for a job still running."""
    import time

    job = services.runner.submit("sleep", {"steps": 3, "step_s": 0.5})
    started = time.monotonic()
    status = (await client.call_tool("get_training_status", {"job_id": job.id, "wait_seconds": 30})).structured_content
    assert status["status"] == "succeeded" and time.monotonic() - started < 25
    slow = services.runner.submit("sleep", {"steps": 100, "step_s": 0.5})
    started = time.monotonic()
    held = (await client.call_tool("get_training_status", {"job_id": slow.id, "wait_seconds": 1})).structured_content
    assert held["status"] in ("queued", "running") and 0.9 <= time.monotonic() - started < 10
    too_long = await client.call_tool("get_training_status", {"job_id": slow.id, "wait_seconds": 600})
    assert too_long.is_error and "wait_seconds" in too_long.content[0].text
    await client.call_tool("cancel_job", {"job_id": slow.id})
