from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from graphtune.server import migrations
from graphtune.server.job_store import JobStatus, JobStore
from graphtune.tools.errors import (
    ConfigError,
    JobNotFound,
    JobStateConflict,
    StorageError,
)


def test_create_get_and_paginate(job_store: JobStore) -> None:
    ids = [job_store.create("sleep", {"i": i}, heavy=False).id for i in range(5)]
    page, total = job_store.list(limit=2)
    assert total == 5 and len(page) == 2
    assert {j.id for j in job_store.list(limit=10)[0]} == set(ids)
    assert job_store.get(ids[0]).params == {"i": 0}
    assert job_store.list(status="running")[1] == 0


def test_unknown_and_malformed_ids(job_store: JobStore) -> None:
    with pytest.raises(JobNotFound):
        job_store.get("job_000000000000")
    with pytest.raises(ConfigError, match="job_id"):
        job_store.get("../../etc/passwd")


def test_claim_respects_limits(job_store: JobStore) -> None:
    heavy = [job_store.create("t", {}, heavy=True).id for _ in range(3)]
    light = [job_store.create("l", {}, heavy=False).id for _ in range(3)]
    claimed = job_store.claim_runnable(max_jobs=3, max_heavy=1)
    assert [j.id for j in claimed] == [heavy[0], light[0], light[1]]
    assert job_store.claim_runnable(max_jobs=3, max_heavy=1) == []
    job_store.finish(heavy[0], JobStatus.SUCCEEDED, result={})
    assert [j.id for j in job_store.claim_runnable(max_jobs=3, max_heavy=1)] == [heavy[1]]


def test_first_outcome_wins(job_store: JobStore) -> None:
    job = job_store.create("l", {}, heavy=False)
    job_store.claim_runnable(max_jobs=1, max_heavy=1)
    assert job_store.finish(job.id, JobStatus.CANCELLED)
    assert not job_store.finish(job.id, JobStatus.SUCCEEDED, result={})
    assert job_store.get(job.id).status is JobStatus.CANCELLED


def test_cancel_queued_is_immediate_and_final_is_conflict(job_store: JobStore) -> None:
    job = job_store.create("l", {}, heavy=False)
    assert job_store.request_cancel(job.id).status is JobStatus.CANCELLED
    with pytest.raises(JobStateConflict):
        job_store.request_cancel(job.id)


def test_reconcile_marks_dead_worker_interrupted(job_store: JobStore) -> None:
    job = job_store.create("l", {}, heavy=False)
    job_store.claim_runnable(max_jobs=1, max_heavy=1)
    proc = subprocess.Popen(["sleep", "0"])
    proc.wait()
    job_store.set_worker(job.id, proc.pid)  # a pid that has exited
    assert job_store.reconcile(stale_after_s=60) == [job.id]
    record = job_store.get(job.id)
    assert record.status is JobStatus.INTERRUPTED and record.error["code"] == "worker_lost"


def test_reconcile_marks_stale_heartbeat_interrupted(job_store: JobStore) -> None:
    job = job_store.create("l", {}, heavy=False)
    job_store.claim_runnable(max_jobs=1, max_heavy=1)
    job_store.set_worker(job.id, os.getpid())  # alive, but the heartbeat is old
    job_store.conn.execute("UPDATE jobs SET heartbeat_at=? WHERE id=?", (time.time() - 120, job.id))
    assert job_store.reconcile(stale_after_s=30) == [job.id]


def test_live_worker_is_left_running(job_store: JobStore) -> None:
    job = job_store.create("l", {}, heavy=False)
    job_store.claim_runnable(max_jobs=1, max_heavy=1)
    job_store.set_worker(job.id, os.getpid())
    assert job_store.reconcile(stale_after_s=30) == []


def test_migration_from_older_schema_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    name, first = migrations.MIGRATIONS[0]
    first(conn)
    conn.execute("INSERT INTO _migrations VALUES (?, 0)", (name,))
    conn.execute("INSERT INTO jobs(id, kind, status, params, created_at) VALUES "
                 "('job_aaaaaaaaaaaa', 'extract', 'succeeded', '{}', 1)")
    conn.close()
    store = JobStore(path)
    assert store.get("job_aaaaaaaaaaaa").status is JobStatus.SUCCEEDED
    assert migrations.pending(store.conn) == []
    assert store.list_models(limit=5, offset=0) == ([], 0)


def test_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="cannot be opened"):
        JobStore(path)


def test_wal_mode_and_busy_timeout(job_store: JobStore) -> None:
    assert job_store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert job_store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10000
