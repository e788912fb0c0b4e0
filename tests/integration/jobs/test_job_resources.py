"""Jobs that share the embedded graph, a dataset or a model are ordered by the job store, so
concurrent work on one data dir never fails with a lock error (issue 13).

Claims are unit-tested on the store (fast); then real ingests and extractions run through one
server, two servers, a SIGKILLed writer and a lock held outside the job store.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_final, wait_for
from graphtune.server.job_kinds import KINDS, Resources
from graphtune.server.job_store import JobStatus, JobStore
from graphtune.server.services import Services
from graphtune.server.settings import Settings
from graphtune.tools.errors import JobStateConflict

GRAPH = "graph:embedded"
PACKAGES = ["json", "html", "http", "email", "logging", "urllib"]


def _create(store: JobStore, writes: tuple[str, ...] = (), reads: tuple[str, ...] = (), heavy: bool = False,
            creates: tuple[str, ...] = ()) -> str:
    return store.create("sleep", {}, heavy=heavy, writes=writes, reads=reads, creates=creates).id


def _claim(store: JobStore, max_jobs: int = 8, max_heavy: int = 1) -> list[str]:
    return [job.id for job in store.claim_runnable(max_jobs=max_jobs, max_heavy=max_heavy)]


def _done(store: JobStore, *job_ids: str) -> None:
    for job_id in job_ids:
        assert store.finish(job_id, JobStatus.SUCCEEDED, result={})


# -- the claims, on the store alone ------------------------------------------------------
def test_one_writer_or_many_readers_per_resource(job_store: JobStore) -> None:
    writer = _create(job_store, writes=(GRAPH,))
    reader1, reader2 = _create(job_store, reads=(GRAPH,)), _create(job_store, reads=(GRAPH,))
    writer2 = _create(job_store, writes=(GRAPH,))
    assert _claim(job_store) == [writer]
    waiting = job_store.get(reader1)
    assert waiting.status is JobStatus.QUEUED and waiting.waiting_for == writer
    assert "writer of the embedded graph" in waiting.wait_reason and writer in waiting.wait_reason
    assert job_store.get(writer2).waiting_for == writer
    _done(job_store, writer)
    assert _claim(job_store) == [reader1, reader2]  # readers share
    second = job_store.get(writer2)
    assert second.waiting_for == reader1 and "and 1 more, which are reading the embedded graph" in second.wait_reason
    _done(job_store, reader1, reader2)
    assert _claim(job_store) == [writer2]
    assert job_store.get(writer2).waiting_for is None and job_store.get(writer2).wait_reason is None


def test_a_stream_of_readers_does_not_starve_a_waiting_writer(job_store: JobStore) -> None:
    reader = _create(job_store, reads=(GRAPH,))
    assert _claim(job_store) == [reader]
    writer = _create(job_store, writes=(GRAPH,))
    late_reader = _create(job_store, reads=(GRAPH,))
    assert _claim(job_store) == []  # the late reader could share with the running one, but the writer came first
    late = job_store.get(late_reader)
    assert late.waiting_for == writer and "queued behind" in late.wait_reason and "will write" in late.wait_reason
    _done(job_store, reader)
    assert _claim(job_store) == [writer]
    _done(job_store, writer)
    assert _claim(job_store) == [late_reader]


def test_jobs_on_other_resources_pass_a_waiting_job(job_store: JobStore) -> None:
    writer = _create(job_store, writes=(GRAPH,))
    reader = _create(job_store, reads=(GRAPH,))
    other = _create(job_store, writes=("dataset:other",))
    plain = _create(job_store)
    assert _claim(job_store) == [writer, other, plain]
    assert job_store.get(reader).status is JobStatus.QUEUED


def test_slot_limits_give_a_reason_too(job_store: JobStore) -> None:
    first = _create(job_store, heavy=True)
    second = _create(job_store, heavy=True)
    light = [_create(job_store) for _ in range(3)]
    assert _claim(job_store, max_jobs=3) == [first, light[0], light[1]]
    heavy = job_store.get(second)
    assert heavy.waiting_for == first and "training slot" in heavy.wait_reason
    last = job_store.get(light[2])
    assert last.waiting_for is None and "max_concurrent_jobs=3" in last.wait_reason
    events = [e for e in job_store.events(second) if e.type == "waiting"]
    assert len(events) == 1
    _claim(job_store, max_jobs=3)  # nothing changed: no second event
    assert len([e for e in job_store.events(second) if e.type == "waiting"]) == 1


def test_a_dead_holder_frees_its_resources_on_reconcile(job_store: JobStore) -> None:
    writer = _create(job_store, writes=(GRAPH,))
    queued = _create(job_store, writes=(GRAPH,))
    assert _claim(job_store) == [writer]
    proc = subprocess.Popen(["sleep", "0"])
    proc.wait()
    job_store.set_worker(writer, proc.pid)  # its worker has exited without finishing
    assert _claim(job_store) == []
    assert job_store.reconcile(stale_after_s=60) == [writer]
    assert _claim(job_store) == [queued]  # nothing to release by hand: claims are the running jobs


def test_a_second_creator_of_one_name_is_refused_at_submit(job_store: JobStore) -> None:
    first = _create(job_store, writes=("model:m",), creates=("model:m",))
    with pytest.raises(JobStateConflict, match="model `m` is already being produced by job") as info:
        _create(job_store, writes=("model:m",), creates=("model:m",))
    assert info.value.field == "output_name" and first in info.value.message
    assert job_store.list()[1] == 1  # the refused job was not queued
    _done(job_store, first)
    _create(job_store, writes=("model:m",), creates=("model:m",))  # no active producer any more


def test_kinds_derive_their_resources_from_params(settings: Settings) -> None:
    def res(kind: str, params: dict) -> Resources:
        return KINDS[kind].resources(params, settings)

    assert res("ingest", {"path": "/x", "write_to": "embedded"}) == Resources(writes=(GRAPH,))
    assert res("ingest", {"path": "/x", "write_to": "neo4j"}).writes == ("graph:neo4j",)
    extract = res("extract", {"dataset_name": "ds"})
    assert extract == Resources(writes=("dataset:ds",), reads=(GRAPH,), creates=("dataset:ds",))
    assert res("extract", {"dataset_name": "ds", "overwrite": True, "source": "neo4j"}) == Resources(
        writes=("dataset:ds",), reads=("graph:neo4j",))
    train = res("train", {"config": {"dataset_name": "ds", "output_name": "m", "init_adapter": "base-lora"}})
    assert train == Resources(writes=("model:m",), reads=("dataset:ds", "model:base-lora"), creates=("model:m",))
    dry_run_on_a_file = {"config": {"dataset_name": "/data/x.jsonl", "dry_run": True, "output_name": "m"}}
    assert res("train", dry_run_on_a_file) == Resources()
    assert res("train", {"config": {"dataset_name": "ds"}}) == Resources(reads=("dataset:ds",))  # name has the job id
    assert res("merge", {"model_name": "m", "output_name": "m-merged"}) == Resources(
        writes=("model:m-merged",), reads=("model:m",), creates=("model:m-merged",))


def test_extraction_overwriting_a_dataset_waits_for_the_training_that_reads_it(settings: Settings,
                                                                              job_store: JobStore) -> None:
    def create(kind: str, params: dict) -> str:
        r = KINDS[kind].resources(params, settings)
        return job_store.create(kind, params, heavy=KINDS[kind].heavy, writes=r.writes, reads=r.reads,
                                creates=r.creates).id

    train = create("train", {"config": {"dataset_name": "ds", "output_name": "m"}})
    assert _claim(job_store) == [train]
    overwrite = create("extract", {"dataset_name": "ds", "overwrite": True})
    assert _claim(job_store) == []
    assert job_store.get(overwrite).wait_reason == f"waiting for {train} (train), which is reading dataset `ds`"
    with pytest.raises(JobStateConflict):  # a second model of the same name could never publish
        create("train", {"config": {"dataset_name": "ds", "output_name": "m"}})
    _done(job_store, train)
    assert _claim(job_store) == [overwrite]


# -- through the runner and the MCP tools ---------------------------------------------------
@pytest.mark.anyio
async def test_a_waiting_job_says_what_it_waits_for(client, services: Services) -> None:
    first = services.runner.submit("sleep", {"steps": 40, "step_s": 0.05, "writes": [GRAPH]})
    second = services.runner.submit("sleep", {"steps": 1, "step_s": 0.01, "reads": [GRAPH]})
    view = (await client.call_tool("get_training_status", {"job_id": second.id})).structured_content
    assert view["status"] == "queued" and view["waiting_for"] == first.id
    assert first.id in view["wait_reason"] and "embedded graph" in view["wait_reason"]
    listed = (await client.call_tool("list_jobs", {"status": "queued"})).structured_content["jobs"]
    assert [(j["job_id"], j["waiting_for"]) for j in listed] == [(second.id, first.id)]
    assert any(e["type"] == "waiting" for e in view["recent_events"])
    done = wait_final(services.store, second.id, timeout=60)
    assert done.status is JobStatus.SUCCEEDED
    assert done.started_at >= services.store.get(first.id).finished_at
    after = (await client.call_tool("get_training_status", {"job_id": second.id})).structured_content
    assert after["waiting_for"] is None and after["wait_reason"] is None


@pytest.mark.slow
@pytest.mark.anyio
async def test_six_concurrent_ingests_through_one_server_all_succeed(client, services: Services) -> None:
    import anyio

    job_ids: list[str] = []

    async def ingest(package: str) -> None:
        result = await client.call_tool("ingest_codebase", {"package": package})
        assert not result.is_error, result.content[0].text
        job_ids.append(result.structured_content["job_id"])

    async with anyio.create_task_group() as tg:
        for package in PACKAGES:
            tg.start_soon(ingest, package)
    finals = [wait_final(services.store, job_id, timeout=300) for job_id in job_ids]
    assert [f.status for f in finals] == [JobStatus.SUCCEEDED] * 6, [f.error for f in finals]
    _assert_no_overlap(finals)
    assert _packages_in_graph(services.settings) >= set(PACKAGES)


def _assert_no_overlap(jobs: list) -> None:
    spans = sorted((j.started_at, j.finished_at) for j in jobs)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end  # one graph writer at a time


def _packages_in_graph(settings: Settings) -> set[str]:
    from graphtune.tools.graph.embedded import EmbeddedGraph

    with EmbeddedGraph(settings.graph_dir, read_only=True) as graph:
        return {path.split("/")[0] for (path,) in graph.rows("MATCH (f:CodeFile) RETURN f.path")}


@pytest.mark.slow
def test_two_servers_on_one_data_dir_ingesting_at_once_all_succeed(tmp_path: Path) -> None:
    from test_faults_and_load import RawStdioServer

    home = tmp_path / "home"
    first = RawStdioServer(home)
    second = RawStdioServer(home)
    try:
        job_ids = []
        for i, package in enumerate(PACKAGES):  # alternate servers: both queue while the other's job writes
            job_ids.append((first if i % 2 == 0 else second).call("ingest_codebase", {"package": package})["job_id"])
        store = JobStore(home / ".graphtune" / "graphtune.sqlite")
        finals = [wait_final(store, job_id, timeout=300) for job_id in job_ids]
        assert [f.status for f in finals] == [JobStatus.SUCCEEDED] * 6, [f.error for f in finals]
        _assert_no_overlap(finals)
        assert _packages_in_graph(Settings(home=home)) >= set(PACKAGES)
        waited = [e for job_id in job_ids for e in store.events(job_id) if e.type == "waiting"]
        assert waited  # they did meet: the second and later ingests waited for the writer
        store.close()
    finally:
        first.kill()
        second.kill()


def _fresh_copy(tmp_path: Path, packages: list[str], tag: str) -> Path:
    """New files (real work, not a no-op re-ingest): copies of stdlib packages under one folder."""
    root = tmp_path / f"src-{tag}"
    for package in packages:
        spec = importlib.util.find_spec(package)
        assert spec and spec.submodule_search_locations
        shutil.copytree(list(spec.submodule_search_locations)[0], root / f"{package}_{tag}",
                        ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _ingest_params(**kwargs: object) -> dict:
    return {"path": None, "package": None, "exclude": [], "write_to": "embedded", "max_file_bytes": 2_000_000,
            "workers": 0, **kwargs}


def test_extraction_started_during_an_ingest_reads_the_complete_graph(tmp_path: Path, services: Services) -> None:
    ingest = services.runner.submit("ingest", _ingest_params(path=str(_fresh_copy(tmp_path, ["email"], "a"))))
    extract = services.runner.submit("extract", {"dataset_name": "during-ingest", "max_records": 100,
                                                 "quality_threshold": 0.5})
    queued = services.store.get(extract.id)
    assert queued.status is JobStatus.QUEUED and queued.waiting_for == ingest.id
    ingested = wait_final(services.store, ingest.id)
    extracted = wait_final(services.store, extract.id)
    assert ingested.status is JobStatus.SUCCEEDED and extracted.status is JobStatus.SUCCEEDED, extracted.error
    assert extracted.started_at >= ingested.finished_at
    # the dataset was built from exactly the version the ingest finished with
    assert extracted.result["graph_fingerprint"] == ingested.result["graph_fingerprint"]


@pytest.mark.slow
def test_sigkill_of_the_graph_writer_frees_the_store_for_the_queued_jobs(tmp_path: Path, services: Services) -> None:
    big = _fresh_copy(tmp_path, ["email", "logging", "http", "xml", "json"], "k")  # > 50 files: progress mid-way
    writer = services.runner.submit("ingest", _ingest_params(path=str(big)))
    queued = [services.runner.submit("ingest", _ingest_params(package=p)) for p in ("json", "html")]
    extract = services.runner.submit("extract", {"dataset_name": "after-kill", "max_records": 100,
                                                 "quality_threshold": 0.5})
    pid = wait_for(lambda: services.store.get(writer.id).worker_pid, timeout=30)
    wait_for(lambda: services.store.get(writer.id).progress_current, timeout=60, interval=0.02)
    os.killpg(pid, signal.SIGKILL)  # mid-ingest: the graph is open read-write, files are being loaded
    for job in queued + [extract]:
        assert services.store.get(job.id).status is JobStatus.QUEUED
    # the server's maintenance round (here: tick) reconciles the dead writer and starts the queue
    wait_for(lambda: services.runner.tick() or all(services.store.get(j.id).status.is_final
                                                   for j in [writer, *queued, extract]), timeout=180, interval=0.3)
    killed = services.store.get(writer.id)
    print("killed writer ended", killed.status.value, (killed.error or {}).get("message"))
    assert killed.status is JobStatus.SUCCEEDED, killed.error  # queued again once (restart_when_lost), redone whole
    finals = [services.store.get(j.id) for j in [*queued, extract]]
    assert [f.status for f in finals] == [JobStatus.SUCCEEDED] * 3, [f.error for f in finals]
    assert {"json", "html"} <= _packages_in_graph(services.settings)


def _hold_graph_lock(settings: Settings, seconds: float) -> subprocess.Popen:
    """Another program (not a graphtune job) opening the embedded graph read-write for a while,
    with a write in its WAL (as an ingest has), so read-only opens cannot open beside it."""
    code = ("import sys, time, ladybug; db = ladybug.Database(sys.argv[1]); c = ladybug.Connection(db); "
            "c.execute('CREATE NODE TABLE IF NOT EXISTS Scratch(x INT64, PRIMARY KEY(x))'); "
            "c.execute('MERGE (:Scratch {x: 1})'); print('locked', flush=True); "
            "time.sleep(float(sys.argv[2])); c.close(); db.close()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(settings.graph_dir), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_graph_locked_outside_the_job_store_is_waited_for_a_bounded_time(settings: Settings) -> None:
    settings.graph_lock_wait_s = 30.0
    services = Services.open(settings)
    holder = _hold_graph_lock(settings, 2.0)
    job = services.runner.submit("ingest", _ingest_params(package="json"))
    final = wait_final(services.store, job.id, timeout=120)
    holder.wait(timeout=30)
    assert final.status is JobStatus.SUCCEEDED, final.error
    assert final.finished_at - final.started_at >= 1.0  # it waited for the lock instead of failing at once
    assert "is locked" in (settings.work_dir / job.id / "worker.log").read_text()
    logged = [e.data["message"] for e in services.store.events(job.id, type_="log")]
    assert any("is locked" in m and "retrying" in m for m in logged)  # visible in get_training_status

    settings.graph_lock_wait_s = 1.0
    holder = _hold_graph_lock(settings, 30.0)
    try:
        job = services.runner.submit("ingest", _ingest_params(package="html"))
        final = wait_final(services.store, job.id, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert final.status is JobStatus.FAILED and final.error["code"] == "graph_unavailable"
    assert "locked by another process (still, after waiting" in final.error["message"]
    services.store.close()


@pytest.mark.anyio
async def test_validate_environment_during_a_write_says_busy_not_broken(client, settings: Settings,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only open beside a writer fails while its WAL awaits a checkpoint (about half the
    time during an ingest, bench/reader_beside_writer.py); that state is replayed here."""
    from graphtune.tools.graph import embedded, sources

    def locked(*args: object, **kwargs: object) -> None:
        raise embedded._map_error(RuntimeError("IO exception: Could not set lock on file : g (Lock is held by PID 7)"),
                                  settings.graph_dir)

    settings.graph_dir.mkdir(parents=True)
    monkeypatch.setattr(sources, "EmbeddedGraph", locked)
    report = (await client.call_tool("validate_environment", {})).structured_content
    check = next(c for c in report["checks"] if c["name"] == "graph:embedded")
    assert check["ok"] and "being written right now" in check["detail"] and "PID 7" in check["detail"], check
