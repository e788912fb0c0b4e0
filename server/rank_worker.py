"""One rank of a multi-GPU training job, started by torchrun from the job's worker.

Every rank runs the same train handler; only rank 0 writes to the job store (metrics, progress,
the model registry) and publishes the adapter. The job's worker process stays the owner of
the job row: ranks never finish the job themselves, rank 0 leaves its outcome in a file the
worker turns into the job's final state (launch.py).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import traceback
from typing import Any

from graphtune.server.job_store import JobStore
from graphtune.server.settings import Settings
from graphtune.tools.errors import GraphtuneError, JobCancelled
from graphtune.tools.training.distributed import OUTCOME_FILE, STOP_FILE, rank_info, shutdown
from graphtune.tools.training.launch import WORKER_PID_ENV, set_parent_death_signal

log = logging.getLogger("graphtune.rank")


class RankContext:
    """The JobContext of one rank: stop requests come from the job folder's `stop` file (and this
    rank's SIGTERM); rank 0 records events and progress, the other ranks stay silent."""

    def __init__(self, job_id: str, settings: Settings, is_main: bool) -> None:
        self.job_id, self.settings, self.is_main = job_id, settings, is_main
        self.work_dir = settings.work_dir / job_id
        self.store = JobStore(settings.db_path) if is_main else None
        self.interrupt_requested = False
        self._checked_at = 0.0
        self._stop: str | None = None

    def progress(self, current: float | None, total: float | None = None, unit: str | None = None,
                 message: str | None = None, *, safe_point: bool = True) -> None:
        if self.store:
            self.store.set_progress(self.job_id, current, total, unit, message)
        if safe_point:
            self.check_cancel()

    def event(self, type_: str, data: dict[str, Any]) -> None:
        if self.store:
            self.store.add_event(self.job_id, type_, data)

    def log(self, message: str, **extra: Any) -> None:
        self.event("log", {"message": message, **extra})

    def register_model(self, row: dict[str, Any]) -> None:
        if self.store:
            self.store.register_model(row)

    def should_stop(self) -> str | None:
        if self.interrupt_requested:
            return "interrupt"
        now = time.monotonic()
        if self._stop is None and now - self._checked_at > 0.5:
            self._checked_at = now
            path = self.work_dir / STOP_FILE
            if path.exists():
                self._stop = "interrupt" if path.read_text().strip() == "interrupt" else "cancel"
        return self._stop

    def check_cancel(self) -> None:
        reason = self.should_stop()
        if reason:
            raise JobCancelled("stopped on request; resumable" if reason == "interrupt" else "cancelled on request",
                               interrupted=reason == "interrupt")


def _write(path: Any, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, default=str))
    os.replace(tmp, path)


def _peer_lost(exc: BaseException) -> bool:
    """A collective failed because another rank is gone (killed, crashed): the job is interrupted,
    not failed; its checkpoints are intact."""
    import torch.distributed as dist

    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return any(s in text for s in ("Connection closed by peer", "Connection reset by peer", "gloo/transport",
                                   "NCCL communicator was aborted", "ProcessGroupNCCL"))


def _orphaned() -> bool:
    """The parent-death signal only covers deaths after it was set: check that the job's worker
    (and with it torchrun) was not already gone while this rank was starting."""
    worker = int(os.environ.get(WORKER_PID_ENV, "0") or 0)
    if os.getppid() == 1:
        return True
    if worker:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
    return False


def main(argv: list[str] | None = None) -> int:
    set_parent_death_signal()  # no rank outlives torchrun (and torchrun none outlives the job's worker)
    if _orphaned():
        return 4
    args = sys.argv[1:] if argv is None else argv
    job_id = args[0]
    info = rank_info()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s rank{info.rank} %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    ctx = RankContext(job_id, settings, info.is_main)
    signal.signal(signal.SIGTERM, lambda *_: setattr(ctx, "interrupt_requested", True))
    params = json.loads((ctx.work_dir / "rank_params.json").read_text())
    outcome: dict[str, Any]
    from graphtune.tools.training.train_job import run_train_job

    try:
        result = run_train_job(params, ctx)
        outcome = {"status": "succeeded", "result": result}
    except JobCancelled as exc:
        outcome = {"status": "interrupted" if exc.interrupted else "cancelled", "message": exc.message}
    except GraphtuneError as exc:
        outcome = {"status": "failed", "error": exc.to_dict()}
    except BaseException as exc:  # noqa: BLE001 - the worker must learn why, whatever happened
        traceback.print_exc()
        if _peer_lost(exc):
            outcome = {"status": "interrupted", "message": f"rank {info.rank} lost a peer rank ({type(exc).__name__}); "
                       "the job is resumable from its last checkpoint"}
        else:
            outcome = {"status": "failed", "error": {
                "code": "internal_error", "message": f"rank {info.rank}: {type(exc).__name__}: {exc}", "field": None,
                "hint": "The traceback is in the job folder's ranks.log."}}
    if info.is_main:
        _write(ctx.work_dir / OUTCOME_FILE, outcome)
    elif outcome["status"] == "failed":
        _write(ctx.work_dir / f"rank{info.rank}-error.json", outcome)
    if outcome["status"] == "failed":
        os._exit(3)  # torchrun stops every other rank at once (none waits on a collective that never comes)
    shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
