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
from graphtune.server.worker import WorkerContext
from graphtune.tools.dataset.atomic import write_text_atomic
from graphtune.tools.errors import GraphtuneError, JobCancelled
from graphtune.tools.training.distributed import OUTCOME_FILE, STOP_FILE, rank_info, shutdown
from graphtune.tools.training.launch import WORKER_PID_ENV, set_parent_death_signal

log = logging.getLogger("graphtune.rank")


class _SilentStore:
    """The job-store calls a rank other than 0 makes: none reach the database (rank 0 reports)."""

    def set_progress(self, *args: Any) -> None:
        return None

    def add_event(self, *args: Any) -> None:
        return None

    def register_model(self, row: dict[str, Any]) -> None:
        return None


class RankContext(WorkerContext):
    """The worker's JobContext, run by one rank: stop requests come from the job folder's `stop`
    file (and this rank's SIGTERM) instead of the job row; rank 0 records events and progress,
    the other ranks stay silent."""

    def __init__(self, job_id: str, settings: Settings, is_main: bool) -> None:
        super().__init__(JobStore(settings.db_path) if is_main else _SilentStore(), job_id, settings)  # type: ignore[arg-type]

    def should_stop(self) -> str | None:
        if self.interrupt_requested:
            return "interrupt"
        now = time.monotonic()
        if not self._cancelled and now - self._cancel_checked_at > 0.5:
            self._cancel_checked_at = now
            path = self.work_dir / STOP_FILE
            if path.exists():
                self.interrupt_requested = path.read_text().strip() == "interrupt"
                self._cancelled = not self.interrupt_requested
        return "interrupt" if self.interrupt_requested else "cancel" if self._cancelled else None


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
        write_text_atomic(ctx.work_dir / OUTCOME_FILE, json.dumps(outcome, default=str))
    elif outcome["status"] == "failed":
        write_text_atomic(ctx.work_dir / f"rank{info.rank}-error.json", json.dumps(outcome, default=str))
    if outcome["status"] == "failed":
        os._exit(3)  # torchrun stops every other rank at once (none waits on a collective that never comes)
    shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
