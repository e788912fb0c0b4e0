"""The job worker: one process per job, started in its own session by the runner.

It owns the job's row while it runs: heartbeats from a thread, progress and events from
the handler, and the outcome at the end. SIGTERM asks the job to stop at its next safe
point as `interrupted` (resumable); a cancel request (set by `cancel_job` in any server)
stops it as `cancelled`. When it ends it starts the next queued jobs, so the queue drains
even when no server is running.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any

from graphtune.server.job_kinds import get_kind
from graphtune.server.job_store import JobStatus, JobStore
from graphtune.server.settings import Settings
from graphtune.server.warm_worker import SPARE_FLAG, preload, ready_marker
from graphtune.tools.errors import GraphtuneError, JobCancelled

log = logging.getLogger("graphtune.worker")


class WorkerContext:
    """The JobContext a handler receives (see graphtune.tools.job_context)."""

    def __init__(self, store: JobStore, job_id: str, settings: Settings) -> None:
        self.store, self.job_id, self.settings = store, job_id, settings
        self.work_dir = settings.work_dir / job_id
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.interrupt_requested = False
        self._cancel_checked_at = 0.0
        self._cancelled = False

    def progress(self, current: float | None, total: float | None = None, unit: str | None = None,
                 message: str | None = None, *, safe_point: bool = True) -> None:
        self.store.set_progress(self.job_id, current, total, unit, message)
        if safe_point:
            self.check_cancel()

    def register_model(self, row: dict[str, Any]) -> None:
        self.store.register_model(row)

    def parent_result(self) -> dict[str, Any] | None:
        parent = self.store.get(self.job_id).depends_on
        return self.store.get(parent).result if parent else None

    def set_alias(self, alias: str, model_name: str) -> str | None:
        return self.store.set_alias(alias, model_name)

    def event(self, type_: str, data: dict[str, Any]) -> None:
        self.store.add_event(self.job_id, type_, data)

    def log(self, message: str, **extra: Any) -> None:
        self.store.add_event(self.job_id, "log", {"message": message, **extra})

    def should_stop(self) -> str | None:
        if self.interrupt_requested:
            return "interrupt"
        now = time.monotonic()
        if not self._cancelled and now - self._cancel_checked_at > 0.5:
            self._cancel_checked_at = now
            self._cancelled = self.store.cancel_requested(self.job_id)
        return "cancel" if self._cancelled else None

    def check_cancel(self) -> None:
        reason = self.should_stop()
        if reason == "interrupt":
            raise JobCancelled("stopped by SIGTERM; resumable", interrupted=True)
        if reason == "cancel":
            raise JobCancelled("cancelled on request")


def _heartbeat_loop(db_path: str, job_id: str, interval: float, stop: threading.Event) -> None:
    store = JobStore(db_path)  # its own connection: sqlite3 connections are not shared across threads
    while not stop.wait(interval):
        try:
            store.heartbeat(job_id)
        except Exception:  # a locked or full database must not kill the job; the next beat retries
            log.exception("heartbeat failed")
    store.close()


class _EventLogHandler(logging.Handler):
    """Warnings logged by the tools while a job runs (e.g. "the embedded graph is locked by
    another process; retrying") become job events, so get_training_status shows them."""

    MAX_EVENTS = 100  # a chatty library must not flood the job's events

    def __init__(self, ctx: WorkerContext) -> None:
        super().__init__(level=logging.WARNING)
        self.ctx, self.sent, self.pid = ctx, 0, os.getpid()

    def emit(self, record: logging.LogRecord) -> None:
        if self.sent >= self.MAX_EVENTS or os.getpid() != self.pid:  # never from a forked parser process:
            return  # an SQLite connection must not be used across fork
        self.sent += 1
        try:
            self.ctx.log(record.getMessage()[:2000], logger=record.name, level=record.levelname.lower())
        except Exception:  # a full or locked database must not break the job over a log line
            pass


def run_job(job_id: str, settings: Settings) -> JobStatus:
    store = JobStore(settings.db_path)
    job = store.get(job_id)
    if job.status is not JobStatus.RUNNING:
        log.warning("job %s is %s, not running; nothing to do", job_id, job.status.value)
        return job.status
    store.set_worker(job_id, os.getpid())
    ctx = WorkerContext(store, job_id, settings)
    signal.signal(signal.SIGTERM, lambda *_: setattr(ctx, "interrupt_requested", True))
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat_loop, args=(str(settings.db_path), job_id, settings.heartbeat_interval_s, stop), daemon=True
    )
    beat.start()
    forward = _EventLogHandler(ctx)
    logging.getLogger("graphtune.tools").addHandler(forward)
    try:
        status = _execute(store, ctx, job.kind, job.params, settings)
    finally:
        logging.getLogger("graphtune.tools").removeHandler(forward)
    stop.set()
    beat.join(timeout=5)
    return status


def _execute(store: JobStore, ctx: WorkerContext, kind: str, params: dict[str, Any], settings: Settings) -> JobStatus:
    job_id = ctx.job_id
    try:
        handler = get_kind(kind, include_test_kinds=settings.enable_test_job_kinds).load()
        result = handler(params, ctx)
    except JobCancelled as exc:
        status = JobStatus.INTERRUPTED if exc.interrupted else JobStatus.CANCELLED
        store.finish(job_id, status, error={"code": status.value, "message": exc.message, "field": None})
        return status
    except GraphtuneError as exc:
        store.finish(job_id, JobStatus.FAILED, error=exc.to_dict())
        return JobStatus.FAILED
    except BaseException as exc:  # the job must end in a final state whatever happened
        ctx.log("unexpected error", traceback=traceback.format_exc()[-4000:])
        error = {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}", "field": None,
                 "hint": "This is a graphtune bug or an environment problem; the traceback is in the job events."}
        store.finish(job_id, JobStatus.FAILED, error=error)
        return JobStatus.FAILED
    store.finish(job_id, JobStatus.SUCCEEDED, result=result)
    return JobStatus.SUCCEEDED


def _wait_as_spare(settings: Settings) -> str | None:
    """SPARE_FLAG (server/warm_worker.py): import the training libraries, say so with the ready
    marker, then wait for a job id on stdin. None: stdin closed, the server let the spare go."""
    marker = ready_marker(settings, os.getpid())
    marker.unlink(missing_ok=True)  # a dead spare's, under a reused PID: not ready before the imports
    preload()
    marker.write_text("")
    try:
        line = sys.stdin.readline()
    finally:
        marker.unlink(missing_ok=True)
    return line.strip() or None


def _adopt_job(settings: Settings, job_id: str) -> None:
    """A spare that took a job writes to that job's worker.log and works in its folder, as a
    worker started for the job would (cwd: the data dir must not shadow packages)."""
    job_dir = settings.work_dir / job_id
    job_dir.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(job_dir / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for stream in (1, 2):
        os.dup2(fd, stream)
    os.close(fd)
    os.chdir(job_dir)
    log.info("warm worker %d took job %s (training libraries imported beforehand)", os.getpid(), job_id)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m graphtune.server.worker JOB_ID | {SPARE_FLAG}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    job_id = args[0]
    if job_id == SPARE_FLAG:
        job_id = _wait_as_spare(settings)
        if job_id is None:
            return 0
        _adopt_job(settings, job_id)
    status = run_job(job_id, settings)
    from graphtune.server.job_runner import (
        JobRunner,  # start whatever the queue holds next
    )

    JobRunner(JobStore(settings.db_path), settings).dispatch()
    return 0 if status is JobStatus.SUCCEEDED else 1


if __name__ == "__main__":
    raise SystemExit(main())
