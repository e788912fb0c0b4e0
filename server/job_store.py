"""The only module that touches job SQL: jobs, their progress, events and outcomes.

Every server instance and every worker process opens the same SQLite file (WAL mode, busy
timeout), so a restarted server sees every job, and workers report without the server.
State changes that must not race (claiming queued jobs under the concurrency limits and
their resources, finishing, reconciling) run inside `BEGIN IMMEDIATE` transactions.

Resource claims (the embedded graph, a dataset, a model: see job_kinds.Resources) are not
stored anywhere but in the `writes`/`reads` of the jobs themselves: a resource is held by
exactly the jobs that are `running` now. Marking a dead job `interrupted` therefore frees
its resources in the same statement; there is no lock row to leak.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from graphtune.server import migrations
from graphtune.server.job_claims import (
    RESOURCE_FIELDS,
    ResourceClaims,
    describe_resource,
)
from graphtune.server.process_liveness import pid_alive
from graphtune.tools.errors import (
    ConfigError,
    JobNotFound,
    JobStateConflict,
    StorageError,
)
from pydantic import BaseModel

JOB_ID_PATTERN = re.compile(r"^job_[0-9a-f]{12}$")


def new_job_id() -> str:
    return "job_" + uuid.uuid4().hex[:12]


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
    writes: list[str] = []
    reads: list[str] = []
    waiting_for: str | None = None  # a queued job: the job it waits for (None: waits for a free slot)
    wait_reason: str | None = None  # a queued job: why it has not started yet
    depends_on: str | None = None  # starts only once this job succeeded; ends with it otherwise
    chain: str | None = None  # the jobs of one retrain: the first job's id (cancelled together)


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
    for key in ("writes", "reads"):
        row[key] = json.loads(row[key]) if row.get(key) else []
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
    def create(
        self, kind: str, params: dict[str, Any], *, heavy: bool, writes: tuple[str, ...] | list[str] = (),
        reads: tuple[str, ...] | list[str] = (), creates: tuple[str, ...] | list[str] = (),
        depends_on: str | None = None, chain: str | None = None,
    ) -> JobRecord:
        """Queue a job. `creates` (a subset of writes): refused with JobStateConflict when an active
        job already writes one of them -- only one of the two could ever publish it.
        `depends_on`: the job starts only after that one succeeded (see `_end_dependents`)."""
        job_id = new_job_id()
        now = time.time()
        with self._immediate() as conn:
            if creates:
                self._refuse_second_creator(set(creates))
            conn.execute(
                "INSERT INTO jobs(id, kind, status, heavy, params, created_at, writes, reads, depends_on, chain)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (job_id, kind, JobStatus.QUEUED.value, int(heavy), json.dumps(params), now,
                 json.dumps(sorted(set(writes))), json.dumps(sorted(set(reads))), depends_on, chain),
            )
            self.add_event(job_id, "state", {"status": "queued"})
        return self.get(job_id)

    def _refuse_second_creator(self, creates: set[str]) -> None:
        active = self._query("SELECT id, kind, status, writes FROM jobs WHERE status IN ('queued', 'running')"
                             " ORDER BY created_at")
        for row in active:
            for res in sorted(creates & set(json.loads(row["writes"] or "[]"))):
                raise JobStateConflict(
                    f"{describe_resource(res)} is already being produced by job `{row['id']}` ({row['kind']}, "
                    f"{row['status']}); only one job can publish it.",
                    field=RESOURCE_FIELDS.get(res.partition(":")[0]),
                    hint=f"Choose another name, or wait for `{row['id']}` to end (get_training_status) "
                    "or stop it (cancel_job).",
                )

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
            f"SELECT * FROM jobs{clause} ORDER BY created_at DESC, id LIMIT ? OFFSET ?", [*args, limit, _sql_int(offset)]
        )
        return [_decode(row) for row in rows], total

    # -- the runner's side ----------------------------------------------------------
    @_locked
    def claim_runnable(self, *, max_jobs: int, max_heavy: int) -> list[JobRecord]:
        """Atomically move queued jobs to running, oldest first, while the concurrency limits
        allow and their resources are free (one writer or many readers per resource, held by
        the running jobs). Every job left queued gets `waiting_for`/`wait_reason` saying why."""
        claimed: list[str] = []
        waits: list[tuple[str, str | None, str]] = []
        now = time.time()
        cols = "id, kind, heavy, writes, reads, waiting_for, wait_reason, depends_on"
        with self._immediate() as conn:
            claims = ResourceClaims()
            running = [_resource_row(r) for r in self._query(f"SELECT {cols} FROM jobs WHERE status='running'")]
            for job in running:
                claims.hold(job)
            heavy_ids = [job["id"] for job in running if job["heavy"]]
            total = len(running)
            queued = self._query(f"SELECT {cols} FROM jobs WHERE status='queued' ORDER BY created_at, id")
            orphans: list[str] = []
            for job in map(_resource_row, queued):
                parent = self._parent_state(job)
                if parent is not None and parent["status"] != "succeeded":  # a chain step waits, reserving nothing
                    if parent["status"] in ("queued", "running"):
                        self._note_wait(job, parent["id"], f"waiting for {parent['id']} ({parent['kind']}), "
                                        "the step before it in its chain", waits)
                    else:
                        orphans.append(parent["id"])
                    continue
                blocker, reason = claims.blocker(job)
                if reason is None and job["heavy"] and len(heavy_ids) >= max_heavy:
                    blocker = heavy_ids[0]
                    reason = (f"waiting for a training slot (max_concurrent_training_jobs={max_heavy}), "
                              f"held by {blocker}")
                elif reason is None and total >= max_jobs:
                    reason = f"waiting for a free job slot (max_concurrent_jobs={max_jobs})"
                if reason is not None:
                    claims.reserve(job)
                    self._note_wait(job, blocker, reason, waits)
                    continue
                conn.execute(
                    "UPDATE jobs SET status='running', started_at=coalesce(started_at, ?), heartbeat_at=?,"
                    " attempt=attempt+1, worker_pid=NULL, waiting_for=NULL, wait_reason=NULL WHERE id=?",
                    (now, now, job["id"]),
                )
                claims.hold(job)
                total += 1
                if job["heavy"]:
                    heavy_ids.append(job["id"])
                claimed.append(job["id"])
        for parent_id in orphans:  # normally ended by finish(); this also heals older rows
            self._end_dependents(parent_id)
        for job_id, blocker, reason in waits:
            self.add_event(job_id, "waiting", {"waiting_for": blocker, "reason": reason})
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
        clause, args = "job_id = ? AND id > ?", [job_id, _sql_int(after_id)]
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
            "UPDATE jobs SET status=?, finished_at=?, result=?, error=?, heartbeat_at=?, waiting_for=NULL,"
            f" wait_reason=NULL WHERE id=?{guard}",
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
            if status is not JobStatus.SUCCEEDED:
                self._end_dependents(job_id)
        return bool(cursor.rowcount)

    def _note_wait(self, job: dict[str, Any], blocker: str | None, reason: str,
                   waits: list[tuple[str, str | None, str]]) -> None:
        """Record why a queued job waits (inside the claim transaction), when that changed."""
        if (blocker, reason) != (job["waiting_for"], job["wait_reason"]):
            self.conn.execute("UPDATE jobs SET waiting_for=?, wait_reason=? WHERE id=?", (blocker, reason, job["id"]))
            waits.append((job["id"], blocker, reason))

    def _parent_state(self, job: dict[str, Any]) -> dict[str, Any] | None:
        if not job.get("depends_on"):
            return None
        rows = self._query("SELECT id, kind, status FROM jobs WHERE id = ?", [job["depends_on"]])
        return rows[0] if rows else {"id": job["depends_on"], "kind": "?", "status": "failed"}

    @_locked
    def _end_dependents(self, job_id: str) -> None:
        """A job ended without success: the queued jobs waiting for it end too, saying why (and theirs, in turn)."""
        parent = self.get(job_id)
        cancelled = parent.status is JobStatus.CANCELLED
        why = (parent.error or {}).get("message") or parent.status.value
        for row in self._query("SELECT id FROM jobs WHERE depends_on = ? AND status = 'queued'", [job_id]):
            self.finish(row["id"], JobStatus.CANCELLED if cancelled else JobStatus.FAILED, error={
                "code": "parent_cancelled" if cancelled else "parent_failed", "field": None,
                "message": f"job `{job_id}` ({parent.kind}) before it in its chain ended `{parent.status.value}`: {why}",
                "hint": None if cancelled else f"See get_training_status(`{job_id}`); fix the cause and start again."})

    @_locked
    def request_cancel(self, job_id: str) -> JobRecord:
        """Cancel a job; any job of a chain (even one that already ended) cancels the unfinished
        jobs of its chain."""
        job = self.get(job_id)
        rows = self._query("SELECT id FROM jobs WHERE chain = ? AND status IN ('queued', 'running') "
                           "ORDER BY created_at DESC", [job.chain]) if job.chain else []
        if not rows:
            return self._cancel_one(job)
        for row in rows:  # the last steps first: none of them starts while the earlier ones stop
            other = self.get(row["id"])
            if not other.status.is_final:  # a cascade may have ended it already
                self._cancel_one(other)
        return self.get(job_id)

    def _cancel_one(self, job: JobRecord) -> JobRecord:
        job_id = job.id
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
    def set_chain(self, job_id: str, chain: str) -> None:
        self.conn.execute("UPDATE jobs SET chain=? WHERE id=?", (chain, job_id))

    @_locked
    def chain_jobs(self, chain: str) -> list[JobRecord]:
        """The jobs of one chain, in order."""
        return [_decode(r) for r in self._query("SELECT * FROM jobs WHERE chain = ? ORDER BY created_at, id", [chain])]

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
    def reconcile(self, *, stale_after_s: float, restartable: Callable[[str], bool] | None = None) -> list[str]:
        """Mark `running` jobs whose worker is gone as `interrupted`; returns their ids.

        A job whose kind is `restartable(kind)` and whose worker process is gone is queued again
        instead, once: its chain goes on.
        A second loss ends it `interrupted` (a job that kills its own worker must not loop)."""
        interrupted: list[str] = []
        now = time.time()
        for job in self.running_jobs():
            gone = bool(job.worker_pid) and not pid_alive(job.worker_pid)
            reason = _why_dead(job, now, stale_after_s, gone)
            if not reason:
                continue
            # only a worker known dead: one that merely went quiet may still be writing
            if gone and restartable is not None and restartable(job.kind) and self._restart_lost(job.id, reason):
                continue
            if self.finish(job.id, JobStatus.INTERRUPTED, error={"code": "worker_lost", "message": reason, "field": None}):
                interrupted.append(job.id)
        return interrupted

    def _restart_lost(self, job_id: str, reason: str) -> bool:
        """Queue a lost job again unless it was restarted before; True when it was queued."""
        restarted = self.conn.execute("SELECT 1 FROM events WHERE job_id = ? AND type = 'state' AND"
                                      " json_extract(data, '$.restarted_after_loss') IS NOT NULL LIMIT 1",
                                      (job_id,)).fetchone()
        if restarted:
            return False
        cursor = self.conn.execute("UPDATE jobs SET status='queued', worker_pid=NULL, heartbeat_at=NULL,"
                                   " progress_message=? WHERE id=? AND status='running'",
                                   (f"queued again: {reason} It runs again from the start, once.", job_id))
        if cursor.rowcount:
            self.add_event(job_id, "state", {"status": "queued", "restarted_after_loss": reason})
        return bool(cursor.rowcount)

    @_locked
    def changes_since(self, event_id: int | None) -> tuple[int, list[str]]:
        """(newest event id, ids of jobs whose state changed after `event_id`); None: just the newest id."""
        newest = self.conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        if event_id is None:
            return newest, []
        rows = self.conn.execute("SELECT job_id FROM events WHERE id > ? AND id <= ? AND type = 'state' ORDER BY id",
                                 (event_id, newest)).fetchall()
        return newest, [row[0] for row in rows]

    @_locked
    def registry_fingerprint(self) -> tuple[Any, ...]:
        """Changes whenever a model is registered, re-evaluated or deleted, or an alias moves."""
        models = self.conn.execute("SELECT count(*), total(created_at), group_concat(length(metrics)) FROM models")
        aliases = self.conn.execute("SELECT group_concat(alias || '=' || model_name || '@' || updated_at) "
                                    "FROM model_aliases")
        return (*models.fetchone(), aliases.fetchone()[0])

    # -- model registry -------------------------------------------------------------
    @_locked
    def register_model(self, row: dict[str, Any]) -> None:
        row = {**row, "metrics": json.dumps(row.get("metrics", {}), default=str)}
        self.db["models"].upsert(row, pk="name")

    @_locked
    def list_models(self, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        total = self.conn.execute("SELECT count(*) FROM models").fetchone()[0]
        rows = self._query("SELECT * FROM models ORDER BY created_at DESC LIMIT ? OFFSET ?", [limit, _sql_int(offset)])
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



def _resource_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "writes": json.loads(row["writes"] or "[]"), "reads": json.loads(row["reads"] or "[]")}


def _why_dead(job: JobRecord, now: float, stale_after_s: float, gone: bool) -> str | None:
    """Why a running job's worker is taken for dead (`gone`: its process is known to have exited), or None."""
    beat_age = now - (job.heartbeat_at or job.started_at or job.created_at)
    if gone:
        return f"worker process {job.worker_pid} is gone (killed or crashed); the job did not finish."
    if beat_age > stale_after_s:
        return f"no heartbeat for {beat_age:.0f}s (limit {stale_after_s:.0f}s); the worker is presumed dead."
    return None


def _sql_int(value: int) -> int:
    """An offset or id from a client, capped at SQLite's largest integer (beyond it the driver raises
    OverflowError instead of returning an empty page)."""
    return min(value, SQLITE_MAX_INT)


SQLITE_MAX_INT = 2**63 - 1
