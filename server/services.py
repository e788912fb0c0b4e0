"""What every tool needs at hand: settings, the job store and the runner."""

from __future__ import annotations

from dataclasses import dataclass

from graphtune.server.job_runner import JobRunner
from graphtune.server.job_store import JobStore
from graphtune.server.settings import Settings


@dataclass
class Services:
    settings: Settings
    store: JobStore
    runner: JobRunner

    @classmethod
    def open(cls, settings: Settings) -> "Services":
        settings.ensure_dirs()
        store = JobStore(settings.db_path)
        return cls(settings=settings, store=store, runner=JobRunner(store, settings))
