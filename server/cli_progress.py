"""Progress while the CLI waits for a job: a rich progress bar on a terminal, else one line per change.

`rich` is imported only here, and only when stderr is a terminal: the server never loads it.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_line", "reporter"]


def progress_line(view: dict[str, Any], *, eta: bool = True) -> str:
    """One line: kind, job, status, progress, wait reason, loss and (unless eta=False) ETA."""
    prog = view["progress"]
    parts = [f"[{view['kind']} {view['job_id']}] {view['status']}"]
    if prog.get("total"):
        parts.append(f"{prog['current']:.0f}/{prog['total']:.0f} {prog.get('unit') or ''}".rstrip())
    if prog.get("message"):
        parts.append(prog["message"])
    if view.get("wait_reason"):
        parts.append(view["wait_reason"])
    metrics = view.get("latest_metrics") or {}
    if "loss" in metrics and "loss" not in (prog.get("message") or ""):
        parts.append(f"loss={metrics['loss']:.4f}")
    if eta and view.get("eta_seconds"):
        parts.append(f"eta={view['eta_seconds']:.0f}s")
    return "  ".join(parts)


class LineReporter:
    """Prints a line to stderr whenever it differs from the last one (logs and scripts)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet, self.last = quiet, ""

    def __enter__(self) -> "LineReporter":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, view: dict[str, Any]) -> None:
        key = progress_line(view, eta=False)  # a new line when the job moves, not each time its ETA ticks
        if key != self.last and not self.quiet:
            print(progress_line(view), file=sys.stderr, flush=True)
        self.last = key


class BarReporter:
    """A rich progress bar on stderr; a status or stage change is printed above it as its own line."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self.task = self.progress.add_task("waiting", total=None)
        self.stage = ""

    def __enter__(self) -> "BarReporter":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, view: dict[str, Any]) -> None:
        prog = view["progress"]
        stage = f"[{view['kind']} {view['job_id']}] {view['status']}  {prog.get('message') or view.get('wait_reason') or ''}"
        if stage.strip() != self.stage:
            self.progress.console.print(stage.strip(), markup=False, highlight=False)
            self.stage = stage.strip()
        loss = (view.get("latest_metrics") or {}).get("loss")
        label = f"{view['status']}" + (f" loss={loss:.4f}" if isinstance(loss, (int, float)) else "")
        self.progress.update(self.task, description=label, total=prog.get("total") or None,
                             completed=prog.get("current") or 0)


def reporter(*, quiet: bool = False, plain: bool = False) -> LineReporter | BarReporter:
    """A bar for people at a terminal; lines when `plain` (--json), quiet, or not a terminal."""
    if quiet or plain or not sys.stderr.isatty():
        return LineReporter(quiet)
    return BarReporter()
