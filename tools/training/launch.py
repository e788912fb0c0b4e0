"""Run one training job on several ranks with torchrun, from the job's worker process.

The worker stays the one process the job store tracks (heartbeats, cancel, outcome); it starts
`torch.distributed.run` (torchrun) in a session of its own and watches it:

- cancel / SIGTERM: the worker writes the job folder's `stop` file; every rank reads it at its
  next optimizer step, the ranks agree (all-reduce) and save one checkpoint, so the job can be
  resumed, on this or another GPU count.
- a rank that dies (SIGKILL, segfault): torchrun stops the others and exits non-zero; with no
  outcome written by rank 0 the job ends `interrupted` (resumable from the last checkpoint).
- the worker that dies: torchrun and every rank carry a parent-death signal, so no rank outlives
  its job (no GPU held by an orphan).

One host: rendezvous on localhost (`--standalone`). Several hosts: GRAPHTUNE_NNODES,
GRAPHTUNE_NODE_RANK and GRAPHTUNE_RDZV_ENDPOINT (host:port) give torchrun's `--nnodes`,
`--node-rank` and `--rdzv-endpoint` (docs/distributed.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from graphtune.tools.dataset.atomic import write_text_atomic
from graphtune.tools.errors import GraphtuneError, JobCancelled, TrainingConfigError
from graphtune.tools.job_context import JobContext
from graphtune.tools.training.distributed import OUTCOME_FILE, RANK_JOB_ENV, STOP_FILE

WORKER_PID_ENV = "GRAPHTUNE_JOB_WORKER_PID"
RANK_ENTRY = "graphtune.server.rank_worker"  # a module name, not an import: tools never import server
POLL_S = 0.5


def set_parent_death_signal() -> None:
    """Linux: get SIGKILL when the parent dies (torchrun for a rank, the worker for torchrun)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_world_size(gpus: int | str, device: str) -> int:
    """Ranks for this job: 'auto' = every visible GPU (1 off CUDA); a count is checked against them."""
    if device != "cuda":
        return 1 if gpus == "auto" else int(gpus)  # CPU: gloo processes (tests the same launcher path)
    visible = visible_gpus()
    if gpus == "auto":
        return max(1, visible)
    if int(gpus) > visible:
        raise TrainingConfigError(f"`gpus`={gpus} but {visible} GPU(s) are visible here.", field="gpus",
                                  hint=f"Use gpus='auto' or a count up to {visible} (CUDA_VISIBLE_DEVICES limits them).")
    return int(gpus)


def torchrun_command(world_size: int, job_id: str, folder: Path) -> list[str]:
    """torchrun's command line. Its per-run folders (`--log-dir`) go inside the job's folder: left to its
    default, every run leaves a `torchelastic_*` folder behind in the system's temporary directory."""
    nnodes = os.environ.get("GRAPHTUNE_NNODES", "1")
    cmd = [sys.executable, "-P", "-m", "torch.distributed.run", f"--nproc-per-node={world_size}",
           "--max-restarts=0", "--monitor-interval=0.5", f"--log-dir={folder / 'torchelastic'}"]
    if nnodes == "1":
        cmd.append("--standalone")
    else:
        cmd += [f"--nnodes={nnodes}", f"--node-rank={os.environ.get('GRAPHTUNE_NODE_RANK', '0')}",
                f"--rdzv-endpoint={os.environ['GRAPHTUNE_RDZV_ENDPOINT']}", "--rdzv-backend=c10d",
                f"--rdzv-id={job_id}"]
    return [*cmd, "-m", RANK_ENTRY, job_id]


def run_ranks(params: dict[str, Any], ctx: JobContext, world_size: int, strategy: str) -> dict[str, Any]:
    """Start the ranks, relay stop requests, and turn their outcome into this job's outcome."""
    folder = ctx.work_dir
    (folder / "rank_params.json").write_text(json.dumps({**params, "world_size": world_size, "strategy": strategy}))
    for stale in (STOP_FILE, OUTCOME_FILE):
        (folder / stale).unlink(missing_ok=True)
    for old in folder.glob("rank*-error.json"):
        old.unlink()
    env = {**os.environ, RANK_JOB_ENV: ctx.job_id, WORKER_PID_ENV: str(os.getpid()), "PYTHONUNBUFFERED": "1",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    ctx.event("distributed", {"world_size": world_size, "strategy": strategy, "log": str(folder / "ranks.log")})
    ctx.progress(0, None, "steps", f"starting {world_size} ranks ({strategy})")
    with open(folder / "ranks.log", "ab") as log_file:
        proc = subprocess.Popen(torchrun_command(world_size, ctx.job_id, folder), stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT, env=env, cwd=str(folder), start_new_session=True,
                                preexec_fn=set_parent_death_signal)
    try:
        code, stop_asked = _watch(proc, ctx, folder)
    finally:
        _stop_group(proc)
    return _outcome(folder, code, stop_asked=stop_asked)


def _watch(proc: subprocess.Popen[bytes], ctx: JobContext, folder: Path) -> tuple[int, bool]:
    """Relay stop requests to the ranks until torchrun exits: (its exit code, whether a stop was
    relayed), so the outcome can tell a stop this job asked for from one torchrun imposed."""
    asked: str | None = None
    while (code := proc.poll()) is None:
        reason = ctx.should_stop()
        if reason and reason != asked:
            write_text_atomic(folder / STOP_FILE, reason)  # whole: a torn read would turn an interrupt into a cancel
            ctx.log(f"asking every rank to stop ({reason}) at the next optimizer step")
            asked = reason
        time.sleep(POLL_S)
    return code, asked is not None


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """torchrun and its ranks live in their own sessions: make sure none is left behind."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def _outcome(folder: Path, code: int, stop_asked: bool = False) -> dict[str, Any]:
    """The job's outcome from what the ranks left. A rank's own error comes before rank 0's
    "interrupted" when nobody asked the ranks to stop: then torchrun stopped rank 0 (SIGTERM)
    because another rank failed, and that failure is the reason a user needs."""
    path = folder / OUTCOME_FILE
    errors = sorted(folder.glob("rank*-error.json"))
    out = json.loads(path.read_text()) if path.exists() else None
    if out and out["status"] == "succeeded":
        return out["result"]
    if out and out["status"] == "failed":
        raise GraphtuneError.from_dict(out["error"])
    if out and (stop_asked or out["status"] == "cancelled"):
        raise JobCancelled(out["message"], interrupted=out["status"] == "interrupted")
    if errors:
        raise GraphtuneError.from_dict(json.loads(errors[0].read_text())["error"])
    tail = _log_tail(folder / "ranks.log", lines=12)
    if out:  # interrupted, not by us: another rank died without a word (signal, out of memory)
        raise JobCancelled(f"{out['message']}: torchrun stopped the ranks (exit code {code}) because another rank "
                           f"ended without an outcome; the job is resumable from its last checkpoint. Last lines "
                           f"of ranks.log: {tail}", interrupted=True)
    raise JobCancelled(f"a rank stopped without an outcome (torchrun exit code {code}); the job is resumable from "
                       f"its last checkpoint. Last lines of ranks.log: {tail}", interrupted=True)


def _log_tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip()[:300] for line in text[-lines:])
