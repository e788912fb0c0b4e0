"""The only module that touches job SQL: jobs, their progress, events and outcomes.

Every server instance and every worker process opens the same SQLite file (WAL mode, busy
timeout), so a restarted server sees every job, and workers report without the server.
State changes that must not race (claiming queued jobs under the concurrency limit,
finishing, reconciling) run inside `BEGIN IMMEDIATE` transactions.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from graphtune.server import migrations
from graphtune.tools.errors import (
    ConfigError,
    JobNotFound,
    JobStateConflict,
    StorageError,
)
from pydantic import BaseModel

JOB_ID_PATTERN = re.compile(r"^job_[0-9a-f]{12}$")


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def is_final(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


class JobRecord(BaseModel):
    """One row of `jobs`, decoded."""

    id: str
    kind: str
    status: JobStatus
    heavy: bool
    params: dict[str, Any]
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    progress_current: float | None = None
    progress_total: float | None = None
    progress_unit: str | None = None
    progress_message: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    worker_pid: int | None = None
    heartbeat_at: float | None = None
    cancel_requested_at: float | None = None
    attempt: int = 0


class EventRecord(BaseModel):
    id: int
    job_id: str
    at: float
    type: str
    data: dict[str, Any]


def validate_job_id(job_id: str, field: str = "job_id") -> str:
    if not isinstance(job_id, str) or not JOB_ID_PATTERN.fullmatch(job_id):
        raise ConfigError(
            f"`{field}`={job_id!r} is not a graphtune job id.",
            field=field,
            hint="Job ids look like `job_1a2b3c4d5e6f`; call `list_jobs` to see them.",
        )
    return job_id


F = TypeVar("F")


def _locked(method: F) -> F:
    """Serialize use of the connection: MCP runs sync tools in worker threads."""

    @functools.wraps(method)  # type: ignore[arg-type]
    def wrapper(self: "JobStore", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)  # type: ignore[operator]

    return wrapper  # type: ignore[return-value]


def _decode(row: dict[str, Any]) -> JobRecord:
    row = dict(row)
    for key in ("params", "result", "error"):
        row[key] = json.loads(row[key]) if row.get(key) else ({} if key == "params" else None)
    return JobRecord(**row)


class JobStore:
    """Jobs and events in one SQLite file shared by the server, the CLI and the workers."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._check_integrity(conn)
            migrations.migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise StorageError(
                f"the job database {self.path} cannot be opened: {exc}.",
                hint="If the file is corrupt, move it aside (jobs in it are lost to graphtune, "
                "outputs in datasets/ and models/ are kept) and restart.",
            ) from exc
        self.conn = conn
        self._lock = threading.RLock()
        self._db: Any = None

    @property
    def db(self) -> Any:
        """sqlite-utils view of the same connection, for table helpers (upserts).

        Imported on first use: it costs ~0.1 s, and hot paths (status polls, start-up) use plain SQL."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def _query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    @staticmethod
    def _check_integrity(conn: sqlite3.Connection) -> None:
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {verdict}")

    @_locked
    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- creating and reading -------------------------------------------------------
    @_locked
    def create(self, kind: str, params: dict[str, Any], *, heavy: bool) -> JobRecord:
        job_id = "job_" + uuid.uuid4().hex[:12]
        now = time.time()
        self.conn.execute(
            "INSERT INTO jobs(id, kind, status, heavy, params, created_at) VALUES (?,?,?,?,?,?)",
            (job_id, kind, JobStatus.QUEUED.value, int(heavy), json.dumps(params), now),
        )
        self.add_event(job_id, "state", {"status": "queued"})
        return self.get(job_id)

    @_locked
    def get(self, job_id: str) -> JobRecord:
        validate_job_id(job_id)
        rows = self._query("SELECT * FROM jobs WHERE id = ?", [job_id])
        if not rows:
            raise JobNotFound(
                f"no job with id `{job_id}`.", field="job_id", hint="Call `list_jobs` to see existing job ids."
            )
        return _decode(rows[0])

    @_locked
    def list(
        self, *, status: str | None = None, kind: str | None = None, limit: int = 20, offset: int = 0
    ) -> tuple[list[JobRecord], int]:
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if kind:
            where.append("kind = ?")
            args.append(kind)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        total = self.conn.execute(f"SELECT count(*) FROM jobs{clause}", args).fetchone()[0]
        rows = self._query(
            f"SELECT * FROM jobs{clause} ORDER BY created_at DESC, id LIMIT ? OFFSET ?", [*args, limit, offset]
        )
        return [_decode(row) for row in rows], total

    # -- the runner's side ----------------------------------------------------------
    @_locked
    def claim_runnable(self, *, max_jobs: int, max_heavy: int) -> list[JobRecord]:
        """Atomically move queued jobs to running while the concurrency limits allow."""
        claimed: list[str] = []
        now = time.time()
        with self._immediate() as conn:
            running = conn.execute("SELECT count(*), coalesce(sum(heavy), 0) FROM jobs WHERE status='running'")
            total, heavy = running.fetchone()
            queued = conn.execute("SELECT id, heavy FROM jobs WHERE status='queued' ORDER BY created_at, id")
            for job_id, is_heavy in queued.fetchall():
                if total >= max_jobs:
                    break
                if is_heavy and heavy >= max_heavy:
                    continue
                conn.execute(
                    "UPDATE jobs SET status='running', started_at=coalesce(started_at, ?), heartbeat_at=?,"
                    " attempt=attempt+1, worker_pid=NULL WHERE id=?",
                    (now, now, job_id),
                )
                total += 1
                heavy += int(is_heavy)
                claimed.append(job_id)
        for job_id in claimed:
            self.add_event(job_id, "state", {"status": "running"})
        return [self.get(job_id) for job_id in claimed]

    @_locked
    def set_worker(self, job_id: str, pid: int) -> None:
        self.conn.execute("UPDATE jobs SET worker_pid=?, heartbeat_at=? WHERE id=?", (pid, time.time(), job_id))

    @_locked
    def heartbeat(self, job_id: str) -> None:
        self.conn.execute("UPDATE jobs SET heartbeat_at=? WHERE id=? AND status='running'", (time.time(), job_id))

    @_locked
    def set_progress(
        self, job_id: str, current: float | None, total: float | None, unit: str | None, message: str | None
    ) -> None:
        self.conn.execute(
            "UPDATE jobs SET progress_current=?, progress_total=?, progress_unit=?, progress_message=?,"
            " heartbeat_at=? WHERE id=?",
            (current, total, unit, message, time.time(), job_id),
        )

    @_locked
    def add_event(self, job_id: str, type_: str, data: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO events(job_id, at, type, data) VALUES (?,?,?,?)",
            (job_id, time.time(), type_, json.dumps(data, default=str)),
        )

    @_locked
    def events(
        self, job_id: str, *, after_id: int = 0, limit: int = 50, type_: str | None = None, newest: bool = False
    ) -> list[EventRecord]:
        clause, args = "job_id = ? AND id > ?", [job_id, after_id]
        if type_:
            clause += " AND type = ?"
            args.append(type_)
        order = "DESC" if newest else "ASC"
        rows = self._query(f"SELECT * FROM events WHERE {clause} ORDER BY id {order} LIMIT ?", [*args, limit])
        records = [EventRecord(**{**row, "data": json.loads(row["data"])}) for row in rows]
        return list(reversed(records)) if newest else records

    @_locked
    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        only_if_running: bool = True,
    ) -> bool:
        """Record the outcome; returns False when the job had already ended (first writer wins)."""
        assert status.is_final
        guard = " AND status IN ('running', 'queued')" if only_if_running else ""
        cursor = self.conn.execute(
            f"UPDATE jobs SET status=?, finished_at=?, result=?, error=?, heartbeat_at=? WHERE id=?{guard}",
            (
                status.value,
                time.time(),
                json.dumps(result, default=str) if result is not None else None,
                json.dumps(error, default=str) if error is not None else None,
                time.time(),
                job_id,
            ),
        )
        if cursor.rowcount:
            payload: dict[str, Any] = {"status": status.value}
            if error:
                payload["error"] = error
            self.add_event(job_id, "state", payload)
        return bool(cursor.rowcount)

    @_locked
    def request_cancel(self, job_id: str) -> JobRecord:
        job = self.get(job_id)
        if job.status.is_final:
            raise JobStateConflict(
                f"job `{job_id}` already ended with status `{job.status.value}`; nothing to cancel.",
                field="job_id",
            )
        if job.status is JobStatus.QUEUED:
            self.finish(job_id, JobStatus.CANCELLED, error={"code": "cancelled", "message": "cancelled while queued"})
        else:
            self.conn.execute(
                "UPDATE jobs SET cancel_requested_at=coalesce(cancel_requested_at, ?) WHERE id=?",
                (time.time(), job_id),
            )
            self.add_event(job_id, "log", {"message": "cancel requested; stopping at the next safe point"})
        return self.get(job_id)

    @_locked
    def cancel_requested(self, job_id: str) -> bool:
        row = self.conn.execute("SELECT cancel_requested_at FROM jobs WHERE id=?", (job_id,)).fetchone()
        return bool(row and row[0])

    @_locked
    def requeue(self, job_id: str, params: dict[str, Any]) -> JobRecord:
        """Put an ended job back in the queue (resume), keeping its id, events and history."""
        with self._immediate() as conn:
            job = self.get(job_id)
            if not job.status.is_final or job.status is JobStatus.SUCCEEDED:
                raise JobStateConflict(
                    f"job `{job_id}` is `{job.status.value}`; only failed, cancelled or interrupted jobs resume.",
                    field="job_id",
                )
            conn.execute(
                "UPDATE jobs SET status='queued', params=?, finished_at=NULL, error=NULL, result=NULL,"
                " cancel_requested_at=NULL, worker_pid=NULL WHERE id=?",
                (json.dumps(params), job_id),
            )
        self.add_event(job_id, "state", {"status": "queued", "resumed": True})
        return self.get(job_id)

    @_locked
    def running_jobs(self) -> list[JobRecord]:
        return [_decode(row) for row in self._query("SELECT * FROM jobs WHERE status='running'")]

    @_locked
    def reconcile(self, *, stale_after_s: float) -> list[str]:
        """Mark `running` jobs whose worker is gone as `interrupted`; returns their ids."""
        interrupted: list[str] = []
        now = time.time()
        for job in self.running_jobs():
            reason = _why_dead(job, now, stale_after_s)
            if reason and self.finish(
                job.id, JobStatus.INTERRUPTED, error={"code": "worker_lost", "message": reason, "field": None}
            ):
                interrupted.append(job.id)
        return interrupted

    # -- model registry -------------------------------------------------------------
    @_locked
    def register_model(self, row: dict[str, Any]) -> None:
        row = {**row, "metrics": json.dumps(row.get("metrics", {}), default=str)}
        self.db["models"].upsert(row, pk="name")

    @_locked
    def list_models(self, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        total = self.conn.execute("SELECT count(*) FROM models").fetchone()[0]
        rows = self._query("SELECT * FROM models ORDER BY created_at DESC LIMIT ? OFFSET ?", [limit, offset])
        return [{**row, "metrics": json.loads(row["metrics"])} for row in rows], total

    @_locked
    def delete_model(self, name: str) -> None:
        """Drop a model's registry row and every alias pointing to it (one transaction)."""
        with self._immediate() as conn:
            conn.execute("DELETE FROM model_aliases WHERE model_name = ?", (name,))
            conn.execute("DELETE FROM models WHERE name = ?", (name,))

    @_locked
    def set_alias(self, alias: str, model_name: str) -> str | None:
        """Point `alias` at `model_name`; returns the model it pointed to before (None: new alias)."""
        with self._immediate() as conn:
            row = conn.execute("SELECT model_name FROM model_aliases WHERE alias = ?", (alias,)).fetchone()
            conn.execute("INSERT INTO model_aliases(alias, model_name, updated_at) VALUES (?, ?, ?) ON CONFLICT(alias) "
                         "DO UPDATE SET model_name = excluded.model_name, updated_at = excluded.updated_at",
                         (alias, model_name, time.time()))
        return row[0] if row else None

    @_locked
    def aliases(self) -> dict[str, str]:
        """alias -> model name."""
        return dict(self.conn.execute("SELECT alias, model_name FROM model_aliases ORDER BY alias").fetchall())



def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def _why_dead(job: JobRecord, now: float, stale_after_s: float) -> str | None:
    beat_age = now - (job.heartbeat_at or job.started_at or job.created_at)
    if job.worker_pid and not pid_alive(job.worker_pid):
        return f"worker process {job.worker_pid} is gone (killed or crashed); the job did not finish."
    if beat_age > stale_after_s:
        return f"no heartbeat for {beat_age:.0f}s (limit {stale_after_s:.0f}s); the worker is presumed dead."
    return None
