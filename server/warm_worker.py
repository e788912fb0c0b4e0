"""The warm worker: one job worker started ahead of time, with the training libraries imported.

Why: a training job's fresh process spends its first seconds importing torch, transformers and
peft before it does any work (measured on one H200: 4.4 s to the job's first progress and 9.7 s
more inside `load_tokenizer`, bench/RESULTS.md, fourteenth session). While the MCP server runs,
once a heavy job has run it keeps one spare worker (`python -m graphtune.server.worker --spare`)
that imports them and waits; the next heavy job is handed to it and starts at its own work.

The spare reads its job id from stdin and exits when stdin closes, so it never outlives the
server that started it. It is used only once it says it is ready (a marker file written after
the imports): a job is never handed to a process that may still fail importing.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from graphtune.server.process_liveness import pid_alive
from graphtune.server.settings import Settings

log = logging.getLogger(__name__)

# What a training job imports first; the job module itself, so its handler loads at once.
PRELOAD = ("torch", "transformers", "peft", "graphtune.tools.training.train_job")
SPARE_FLAG = "--spare"


def ready_marker(settings: Settings, pid: int) -> Path:
    return settings.work_dir / f"warm-worker-{pid}.ready"


def sweep_stale_markers(settings: Settings) -> None:
    """Delete the ready markers of spares that are gone. A spare killed outright (SIGKILL, the
    machine's OOM killer) cannot remove its own, and a later spare given the same PID would
    look ready before its imports finished."""
    for marker in settings.work_dir.glob("warm-worker-*.ready"):
        pid = marker.stem.removeprefix("warm-worker-")
        if not pid.isdigit() or not pid_alive(int(pid)):
            marker.unlink(missing_ok=True)


def preload() -> None:
    """Import PRELOAD (the spare's side). A library that fails to import is left to the job,
    which reports it as its own error."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any import failure is the job's to report, not the spare's
            log.warning("warm worker: importing %s failed: %s", name, exc)


def can_train() -> bool:
    """Whether the training libraries are installed at all: without them a spare saves nothing."""
    return importlib.util.find_spec("torch") is not None


class WarmWorker:
    """The runner's side: start the spare, hand it a job, close it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._proc: subprocess.Popen[bytes] | None = None
        # dispatch runs in tool-call threads and in the maintenance thread: one job per spare
        self._lock = threading.Lock()

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The spare waiting for a job (None once it took one or was let go)."""
        return self._proc

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ready(self) -> bool:
        return self.alive() and ready_marker(self.settings, self._proc.pid).exists()  # type: ignore[union-attr]

    def start(self, start_worker: Callable[..., subprocess.Popen[bytes]]) -> None:
        """Start a spare (none must be alive) with the runner's `start_worker(arg, folder, stdin=...)`,
        the same command line and environment as a job's worker. Its output goes to
        work/warm-worker.log until it takes a job, then to that job's worker.log."""
        self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        sweep_stale_markers(self.settings)
        with self._lock:
            try:
                self._proc = start_worker(SPARE_FLAG, self.settings.work_dir, log_name="warm-worker.log",
                                          stdin=subprocess.PIPE)
            except OSError as exc:  # no spare is no failure: jobs start cold as before
                log.warning("could not start a warm worker: %s", exc)
                self._proc = None

    def take(self, job_id: str) -> subprocess.Popen[bytes] | None:
        """Hand `job_id` to the spare if it is ready; the process now belongs to that job.
        None: no ready spare (start the job cold)."""
        with self._lock:
            if not self.ready():
                return None
            proc, self._proc = self._proc, None
        try:
            proc.stdin.write(f"{job_id}\n".encode())  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        except OSError:  # it died between the check and the write
            return None
        return proc

    def close(self) -> None:
        """Let the spare go: with stdin closed it exits (it holds no job)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
