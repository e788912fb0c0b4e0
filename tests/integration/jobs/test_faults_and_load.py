"""Faults and load: SIGKILL the server or a worker at random moments; 50 concurrent calls over HTTP.

Repeat counts come from FAULT_REPEATS (default 3 here; docs/reliability.md records
longer runs).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import wait_final, wait_for
from graphtune.server.job_store import JobStatus, JobStore
from graphtune.server.services import Services
from graphtune.server.settings import Settings

pytestmark = pytest.mark.slow
REPEATS = int(os.environ.get("FAULT_REPEATS", "3"))
INGEST_PACKAGES = ["html", "http", "email", "logging", "urllib", "xml"]


def _fresh_copy(tmp_path: Path, package: str, attempt: int) -> Path:
    import importlib.util
    import shutil

    spec = importlib.util.find_spec(package)
    assert spec and spec.submodule_search_locations
    target = tmp_path / f"src{attempt}" / f"{package}{attempt}"
    shutil.copytree(list(spec.submodule_search_locations)[0], target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


class RawStdioServer:
    """`graphtune serve` in a subprocess we can SIGKILL, spoken to with raw JSON-RPC lines."""

    def __init__(self, home: Path) -> None:
        env = {**os.environ, "GRAPHTUNE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "graphtune.server", "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
        self.next_id = 0
        self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                    "clientInfo": {"name": "fault-test", "version": "1"}})
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _send(self, message: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        self._send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        assert self.proc.stdout is not None
        while True:
            message = json.loads(self.proc.stdout.readline())
            if message.get("id") == self.next_id:
                return message["result"]

    def call(self, tool: str, args: dict) -> dict:
        result = self.request("tools/call", {"name": tool, "arguments": args})
        assert not result.get("isError"), result
        return result["structuredContent"]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


def test_sigkill_of_the_server_does_not_stop_its_jobs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store_path = home / ".graphtune" / "graphtune.sqlite"
    for attempt in range(REPEATS):
        server = RawStdioServer(home)
        source = _fresh_copy(tmp_path, "email", attempt)  # new files each time: real work, not a no-op re-ingest
        job_id = server.call("ingest_codebase", {"path": str(source)})["job_id"]
        time.sleep(random.uniform(0.0, 0.8))
        server.kill()
        store = JobStore(store_path)
        final = wait_final(store, job_id, timeout=120)
        assert final.status is JobStatus.SUCCEEDED, final.error  # the worker outlived its server
        restarted = RawStdioServer(home)
        assert restarted.call("get_training_status", {"job_id": job_id})["status"] == "succeeded"
        running = restarted.call("list_jobs", {"status": "running"})
        assert running["total"] == 0
        restarted.kill()
        store.close()


def _check_dataset_complete_or_absent(settings: Settings, name: str) -> str:
    folder = settings.datasets_dir / name
    if not folder.exists():
        return "absent"
    meta = json.loads((folder / "metadata.json").read_text())
    for split in ("train", "eval"):
        rows = [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines()]
        assert len(rows) == meta[f"{split}_examples"]
    return "complete"


def test_sigkill_of_workers_leaves_interrupted_jobs_and_whole_outputs(tmp_path: Path) -> None:
    """Workers killed at random moments: an extraction ends `interrupted` with its dataset whole
    or absent; an ingest is queued again once and ends `succeeded`."""
    settings = Settings(home=tmp_path / "home", stale_after_s=5)
    services = Services.open(settings)
    ingest = services.runner.submit("ingest", {"package": "email", "path": None, "exclude": [], "write_to": "embedded",
                                               "max_file_bytes": 2_000_000, "workers": 0})
    assert wait_final(services.store, ingest.id).status is JobStatus.SUCCEEDED
    outcomes = []
    for attempt in range(REPEATS):
        kind, params = random.choice([
            ("extract", {"dataset_name": f"ds{attempt}", "max_records": 100}),
            ("ingest", {"path": str(_fresh_copy(tmp_path, "json", attempt)), "exclude": [], "write_to": "embedded",
                        "max_file_bytes": 2_000_000, "workers": 0}),
        ])
        job = services.runner.submit(kind, params)
        pid = wait_for(lambda: services.store.get(job.id).worker_pid, timeout=30)
        time.sleep(random.uniform(0.1, 1.5))
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it had finished already
        # dispatch reconciles first: a killed extraction ends `interrupted`, a killed ingest is queued
        # again (restart_when_lost) and started by the same dispatch
        wait_for(lambda: services.runner.dispatch() is not None and services.store.get(job.id).status.is_final,
                 timeout=120)
        final = services.store.get(job.id)
        if kind == "ingest":
            assert final.status is JobStatus.SUCCEEDED, final.error  # redone whole after a kill
        if kind == "extract" and final.status is JobStatus.FAILED:
            # an ingest killed earlier in the loop left its code base unfinished: extraction over every
            # code base refuses it by name rather than reading a partial graph (re-ingesting repairs it)
            assert final.error["code"] == "codebase_incomplete", final.error
            assert ("ingest", "interrupted") in outcomes
        else:
            assert final.status in (JobStatus.SUCCEEDED, JobStatus.INTERRUPTED), final.error
        if kind == "extract":
            state = _check_dataset_complete_or_absent(settings, params["dataset_name"])
            assert (state == "complete") == (final.status is JobStatus.SUCCEEDED)
        outcomes.append((kind, final.status.value))
    print("fault outcomes:", outcomes)
    # the graph store survives killed writers: a fresh ingest still works
    again = services.runner.submit("ingest", {"package": "json", "exclude": [], "write_to": "embedded",
                                              "max_file_bytes": 2_000_000, "workers": 0})
    assert wait_final(services.store, again.id).status is JobStatus.SUCCEEDED
    assert not services.store.list(status="running")[1]


@pytest.mark.anyio
async def test_fifty_concurrent_calls_over_http_with_ingests_mixed_in(tmp_path: Path) -> None:
    import socket

    import anyio
    import uvicorn
    from graphtune.server.app import create_app
    from graphtune.server.transports import http_app
    from graphtune.tools.graph.ingest import IngestParams, run_ingest
    from mcp.client import Client

    settings = Settings(home=tmp_path / "home", max_concurrent_jobs=3)
    settings.ensure_dirs()
    run_ingest(IngestParams(package="json"), settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(http_app(app, settings, "127.0.0.1", port), host="127.0.0.1", port=port,
                                           log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20)
    store = JobStore(settings.db_path)
    peak = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], store.list(status="running")[1])
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    job_ids: list[str] = []
    errors: list[str] = []
    ingests = dict(zip(range(4, 50, 8), INGEST_PACKAGES, strict=False))  # 6 ingests among 44 extractions
    async with Client(f"http://127.0.0.1:{port}/mcp") as client:
        async def one(i: int) -> None:
            if i in ingests:  # writers of the graph the extractions read: the job store orders them
                result = await client.call_tool("ingest_codebase", {"package": ingests[i]})
            else:
                result = await client.call_tool("extract_training_data", {"dataset_name": f"load-{i}",
                                                                          "max_records": 100})
            if result.is_error:
                errors.append(result.content[0].text)
            else:
                job_ids.append(result.structured_content["job_id"])

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(one, i)
    assert errors == [] and len(set(job_ids)) == 50
    finals = [wait_final(store, job_id, timeout=600) for job_id in job_ids]
    stop.set()
    server.should_exit = True
    assert all(f.status is JobStatus.SUCCEEDED for f in finals), [f.error for f in finals if f.error]  # 0 failures
    assert store.list(kind="extract", limit=100)[1] == 44 and store.list(kind="ingest", limit=100)[1] == 6
    assert 1 <= peak[0] <= settings.max_concurrent_jobs
    for ingest in (f for f in finals if f.kind == "ingest"):  # no extraction ran beside a graph writer
        assert not [f.id for f in finals if f.kind == "extract" and f.started_at < ingest.finished_at
                    and f.finished_at > ingest.started_at]
    from graphtune.tools.graph.embedded import EmbeddedGraph

    with EmbeddedGraph(settings.graph_dir, read_only=True) as graph:  # package ingests add up
        packages = {p.split("/")[0] for (p,) in graph.rows("MATCH (f:CodeFile) RETURN f.path")}
    assert packages >= {"json", *ingests.values()}
    logs = " ".join(p.read_text() for p in settings.work_dir.rglob("worker.log"))
    assert "database is locked" not in logs and "Could not set lock" not in logs


def test_sigkill_of_the_server_during_training_leaves_the_job_running_to_the_end(tmp_path: Path) -> None:
    """Training runs in its own worker process: killing the server (e.g. Claude Desktop closing
    it) mid-training does not stop it, and a new server reports the finished model."""
    from tiny_model import create_tiny_model

    home = tmp_path / "home"
    rows = [{"messages": [{"role": "user", "content": f"What is item {i}?"},
                          {"role": "assistant", "content": f"Item {i} is number {i}."}]} for i in range(24)]
    data = home / "datasets" / "items"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "metadata.json").write_text("{}")
    tiny = create_tiny_model(tmp_path / "tiny", [m["content"] for r in rows for m in r["messages"]])
    server = RawStdioServer(home)
    job_id = server.call("start_fine_tuning", {"dataset_name": "items", "base_model": str(tiny), "batch_size": 1,
                                               "num_epochs": 2, "device": "cpu", "output_name": "items-lora"})["job_id"]
    store = JobStore(home / ".graphtune" / "graphtune.sqlite")
    wait_for(lambda: (store.get(job_id).progress_current or 0) >= 3, timeout=120)
    server.kill()
    assert store.get(job_id).status is JobStatus.RUNNING
    final = wait_final(store, job_id, timeout=300)
    assert final.status is JobStatus.SUCCEEDED, final.error
    restarted = RawStdioServer(home)
    models = restarted.call("list_models", {})
    assert [m["name"] for m in models["models"]] == ["items-lora"]
    restarted.kill()
