"""End to end over a real stdio subprocess, and with a real third-party client (MCP Inspector CLI)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from graphtune.server.job_store import JobStatus, JobStore


def _server_params(home: Path):  # noqa: ANN202
    from mcp.client.stdio import StdioServerParameters

    env = {**os.environ, "GRAPHTUNE_HOME": str(home), "GRAPHTUNE_ENABLE_TEST_JOB_KINDS": "1",
           "HF_HUB_OFFLINE": "1"}
    return StdioServerParameters(command=sys.executable, args=["-m", "graphtune.server", "serve"], env=env)


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_subprocess_lists_tools_and_validates(tmp_path: Path, mode: str) -> None:
    from mcp.client import Client

    async with Client(_server_params(tmp_path), mode=mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"validate_environment", "get_training_status", "extract_training_data"} <= names
        result = await client.call_tool("validate_environment", {})
        assert not result.is_error and result.structured_content["checks"]


@pytest.mark.slow
@pytest.mark.anyio
async def test_restarted_server_sees_old_jobs_and_reconciles(tmp_path: Path) -> None:
    """A job survives its server: after a kill and restart, its status is still true."""
    from mcp.client import Client

    home = tmp_path / "home"
    from graphtune.server.services import Services
    from graphtune.server.settings import Settings

    services = Services.open(Settings(home=home, enable_test_job_kinds=True))
    done = services.runner.submit("sleep", {"steps": 1, "step_s": 0.01})
    from conftest import wait_final

    wait_final(services.store, done.id)
    # a job that claims to be running but whose worker died with the old server
    orphan = services.store.create("sleep", {}, heavy=False)
    services.store.conn.execute("UPDATE jobs SET status='running', worker_pid=999999, started_at=0, heartbeat_at=0 "
                                "WHERE id=?", (orphan.id,))
    async with Client(_server_params(home)) as client:
        old = (await client.call_tool("get_training_status", {"job_id": done.id})).structured_content
        assert old["status"] == "succeeded"
        orphaned = (await client.call_tool("get_training_status", {"job_id": orphan.id})).structured_content
        assert orphaned["status"] == "interrupted"
        assert orphaned["error"]["code"] == "worker_lost"
    assert JobStore(home / ".graphtune" / "graphtune.sqlite").get(orphan.id).status is JobStatus.INTERRUPTED


def _inspector(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["npx", "-y", "@modelcontextprotocol/inspector", "--cli", "-e", f"GRAPHTUNE_HOME={home}",
           "-e", "HF_HUB_OFFLINE=1", sys.executable, "-m", "graphtune.server", "serve", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.inspector
@pytest.mark.skipif(shutil.which("npx") is None, reason="npx (node) is not installed")
def test_mcp_inspector_cli_lists_tools_and_calls_validate(tmp_path: Path) -> None:
    listed = _inspector(tmp_path, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    names = {t["name"] for t in json.loads(listed.stdout)["tools"]}
    assert {"validate_environment", "start_fine_tuning", "get_training_status", "list_models"} <= names
    called = _inspector(tmp_path, "--method", "tools/call", "--tool-name", "validate_environment")
    assert called.returncode == 0, called.stderr[-2000:]
    payload = json.loads(called.stdout)
    assert payload.get("isError") is not True
    assert payload["structuredContent"]["checks"]
