"""Starts queued jobs in worker processes, enforces cancel grace periods, reconciles crashes.

Any process may dispatch (a server, the CLI, a worker that just finished): claiming jobs is
an atomic transaction in the job store, so two dispatchers never start the same job, and
two jobs that conflict on a resource (two writers of the embedded graph, a reader beside a
writer) never run at once, whichever server or worker queued or started them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from graphtune.server.job_kinds import get_kind
from graphtune.server.job_store import JobRecord, JobStatus, JobStore
from graphtune.server.process_liveness import pid_alive
from graphtune.server.settings import Settings
from graphtune.server.warm_worker import WarmWorker, can_train
from graphtune.tools.errors import ConfigError

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._warm: WarmWorker | None = None  # only a long-lived dispatcher (the server) keeps one
        self._heavy_seen = False

    def keep_warm_worker(self) -> None:
        """From now on keep one pre-imported worker for heavy jobs (server/warm_worker.py), once a heavy
        job has run here. The MCP server calls this; a CLI command or a finishing worker does not."""
        if self.settings.warm_worker and can_train():
            self._warm = WarmWorker(self.settings)

    def close_warm_worker(self) -> None:
        """Let the spare go and keep none from now on (the server's exit)."""
        warm, self._warm = self._warm, None
        if warm is not None:
            warm.close()

    @property
    def warm_worker(self) -> WarmWorker | None:
        """The spare's keeper while this runner keeps one (keep_warm_worker), else None."""
        return self._warm

    def submit(self, kind: str, params: dict[str, Any]) -> JobRecord:
        """Queue a job (validated params) and start it now if the limits allow."""
        job = self._create(kind, params)
        self.dispatch()
        return self.store.get(job.id)

    def _create(self, kind: str, params: dict[str, Any], depends_on: str | None = None,
                chain: str | None = None) -> JobRecord:
        job_kind = get_kind(kind, include_test_kinds=self.settings.enable_test_job_kinds)
        res = job_kind.resources(params, self.settings)
        return self.store.create(kind, params, heavy=job_kind.heavy, writes=res.writes, reads=res.reads,
                                 creates=res.creates, depends_on=depends_on, chain=chain)

    def submit_chain(self, steps: list[tuple[str, dict[str, Any]]]) -> list[JobRecord]:
        """Queue jobs that run one after the other: each waits for the one before it and ends
        (failed/cancelled, with the reason) when that one does not succeed. All or nothing:
        a step refused at submit cancels the steps already queued."""
        jobs: list[JobRecord] = []
        try:
            for kind, params in steps:
                jobs.append(self._create(kind, params, depends_on=jobs[-1].id if jobs else None,
                                         chain=jobs[0].id if jobs else None))
                if len(jobs) == 1:  # the first job is the chain's id: mark it a member too
                    self.store.set_chain(jobs[0].id, jobs[0].id)
        except BaseException:
            if jobs:
                self.store.request_cancel(jobs[0].id)
            raise
        self.dispatch()
        return [self.store.get(job.id) for job in jobs]

    def dispatch(self) -> list[JobRecord]:
        """Start what may start. Dead holders are reconciled first, so a killed worker's
        resources go to the queued jobs now, not at the next maintenance round."""
        self.reconcile()
        claimed = self.store.claim_runnable(
            max_jobs=self.settings.max_concurrent_jobs, max_heavy=self.settings.max_concurrent_training_jobs
        )
        for job in claimed:
            self._spawn(job)
        return claimed

    def _start_worker(self, arg: str, folder: Path, *, log_name: str = "worker.log",
                      stdin: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
        """`python -m graphtune.server.worker ARG` (a job id, or the warm worker's flag) in its own session,
        working in `folder` with its output appended to folder/log_name."""
        env = {**os.environ, **self.settings.to_worker_env(), "PYTHONUNBUFFERED": "1"}
        with open(folder / log_name, "ab") as log_file:
            return subprocess.Popen(
                # -P and a cwd under work/: the data dir holds datasets/ and models/ folders, which must
                # never shadow the `datasets` package or others on sys.path.
                [sys.executable, "-P", "-m", "graphtune.server.worker", arg],
                stdin=stdin, stdout=log_file, stderr=subprocess.STDOUT,
                env=env, start_new_session=True, cwd=str(folder),
            )

    def _spawn(self, job: JobRecord) -> None:
        job_dir = self.settings.work_dir / job.id
        job_dir.mkdir(parents=True, exist_ok=True)
        self._heavy_seen = self._heavy_seen or job.heavy
        warm = self._warm  # read once: close_warm_worker (the server's exit) may clear it meanwhile
        proc = warm.take(job.id) if warm is not None and job.heavy else None
        if proc is None:
            try:
                proc = self._start_worker(job.id, job_dir)
            except OSError as exc:
                self.store.finish(job.id, JobStatus.FAILED, error={
                    "code": "worker_spawn_failed", "message": f"could not start the worker: {exc}", "field": None})
                return
        self.store.set_worker(job.id, proc.pid)
        self._children[job.id] = proc

    def _keep_warm(self) -> None:
        """Start the spare once a heavy job has run here and none runs now: importing torch beside a
        starting training job would slow that job on a small machine."""
        warm = self._warm  # read once (see _spawn)
        if warm is None or not self._heavy_seen or warm.alive():
            return
        if any(job.heavy for job in self.store.running_jobs()):
            return
        warm.start(self._start_worker)

    def reap(self) -> None:
        """Collect exit codes of our own children so they do not linger as zombies."""
        for job_id, proc in list(self._children.items()):  # dispatch reaps too: several threads may be here
            if proc.poll() is not None:
                self._children.pop(job_id, None)

    def _restartable(self, kind: str) -> bool:
        try:
            return get_kind(kind, include_test_kinds=self.settings.enable_test_job_kinds).restart_when_lost
        except ConfigError:  # a kind this version no longer has
            return False

    def reconcile(self) -> list[str]:
        self.reap()
        interrupted = self.store.reconcile(stale_after_s=self.settings.stale_after_s, restartable=self._restartable)
        for job_id in interrupted:
            log.warning("job %s was running without a live worker; marked interrupted", job_id)
        return interrupted

    def enforce_cancel_grace(self) -> list[str]:
        """Kill jobs that ignored a cancel request for longer than the grace period."""
        killed: list[str] = []
        now = time.time()
        for job in self.store.running_jobs():
            if job.cancel_requested_at and now - job.cancel_requested_at > self.settings.cancel_grace_s:
                self.kill(job)
                killed.append(job.id)
        return killed

    def kill(self, job: JobRecord) -> None:
        """Forceful cancel: SIGKILL the worker's process group, then record `cancelled`."""
        if job.worker_pid and pid_alive(job.worker_pid):
            try:
                os.killpg(job.worker_pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.store.finish(job.id, JobStatus.CANCELLED, error={
            "code": "cancelled", "message": "killed after the cancel grace period", "field": None})

    def tick(self) -> None:
        """One maintenance round, run periodically by the server."""
        self.reconcile()
        self.enforce_cancel_grace()
        self.dispatch()
        self._keep_warm()
