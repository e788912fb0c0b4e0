"""What a job handler may do while it runs: report progress, write events, check for cancel.

Handlers (ingest, extract, train) live in tools/ and receive an object of this shape from
the worker process in server/; this protocol keeps imports flowing server -> tools only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class JobContext(Protocol):
    job_id: str
    work_dir: Path  # scratch folder of this job, on the same filesystem as the outputs
    settings: Any  # graphtune.server.settings.Settings

    def progress(
        self, current: float | None, total: float | None = None, unit: str | None = None, message: str | None = None,
        *, safe_point: bool = True,
    ) -> None:
        """Record progress; unless safe_point=False, also raise JobCancelled after a cancel request."""

    def event(self, type_: str, data: dict[str, Any]) -> None:
        """Append a time-series event (metrics, logs) to the job."""

    def log(self, message: str, **extra: Any) -> None:
        """Append a log line event."""

    def should_stop(self) -> str | None:
        """'cancel' or 'interrupt' once the job was asked to stop, else None (cheap; poll freely)."""

    def check_cancel(self) -> None:
        """Raise JobCancelled if the job was asked to stop."""

    def register_model(self, row: dict[str, Any]) -> None:
        """Record a finished model in the registry (list_models)."""

    def parent_result(self) -> dict[str, Any] | None:
        """The result of the job this one waited for (a chain step's predecessor), else None."""

    def set_alias(self, alias: str, model_name: str) -> str | None:
        """Point a model alias at `model_name`; returns the model it pointed to before."""
