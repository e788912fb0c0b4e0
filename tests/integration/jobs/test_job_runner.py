"""The runner with real worker processes (the test-only `sleep` job kind)."""

from __future__ import annotations

import os
import signal

from conftest import wait_final, wait_for
from graphtune.server.job_store import JobStatus
from graphtune.server.services import Services


def test_job_runs_in_a_worker_and_succeeds(services: Services) -> None:
    job = services.runner.submit("sleep", {"steps": 3, "step_s": 0.05})
    final = wait_final(services.store, job.id)
    assert final.status is JobStatus.SUCCEEDED and final.result == {"steps": 3}
    assert final.worker_pid and final.worker_pid != os.getpid()
    assert [e.data["step"] for e in services.store.events(job.id, type_="metrics")] == [1, 2, 3]


def test_cancel_stops_at_a_safe_point(services: Services) -> None:
    job = services.runner.submit("sleep", {"steps": 500, "step_s": 0.05})
    wait_for(lambda: services.store.get(job.id).progress_current)
    services.store.request_cancel(job.id)
    final = wait_final(services.store, job.id, timeout=20)
    assert final.status is JobStatus.CANCELLED
    assert final.progress_current < 500


def test_sigkill_worker_leaves_interrupted_after_reconcile(services: Services) -> None:
    job = services.runner.submit("sleep", {"steps": 500, "step_s": 0.05})
    pid = wait_for(lambda: services.store.get(job.id).worker_pid)
    wait_for(lambda: services.store.get(job.id).progress_current)
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: services.runner.reconcile() or services.store.get(job.id).status.is_final, timeout=20)
    final = services.store.get(job.id)
    assert final.status is JobStatus.INTERRUPTED
    assert "gone" in final.error["message"]


def test_a_lost_restartable_job_is_queued_again_once(services: Services) -> None:
    """An ingest (restart_when_lost) whose worker is killed runs again from the start; killed a
    second time it ends `interrupted`, so a job that kills its own worker cannot loop."""
    job = services.runner.submit("sleep_restartable", {"steps": 500, "step_s": 0.05})
    first = wait_for(lambda: services.store.get(job.id).worker_pid)
    wait_for(lambda: services.store.get(job.id).progress_current)
    os.killpg(first, signal.SIGKILL)
    wait_for(lambda: services.store.reconcile(stale_after_s=60, restartable=lambda kind: True) == []
             and services.store.get(job.id).status is JobStatus.QUEUED, timeout=30)
    assert services.store.get(job.id).progress_message.startswith("queued again: worker process")

    def restarted() -> int | None:
        services.runner.tick()  # reconcile (queues it again), then dispatch
        pid = services.store.get(job.id).worker_pid
        return pid if pid not in (None, first) else None

    second = wait_for(restarted, timeout=30)
    again = services.store.get(job.id)
    assert again.status is JobStatus.RUNNING and second != first
    assert any(e.data.get("restarted_after_loss") for e in services.store.events(job.id, type_="state"))
    wait_for(lambda: services.store.get(job.id).progress_current)
    os.killpg(second, signal.SIGKILL)
    wait_for(lambda: services.runner.reconcile() or services.store.get(job.id).status.is_final, timeout=30)
    final = services.store.get(job.id)
    assert final.status is JobStatus.INTERRUPTED and "gone" in final.error["message"]


def test_sigterm_ends_interrupted(services: Services) -> None:
    job = services.runner.submit("sleep", {"steps": 500, "step_s": 0.05})
    pid = wait_for(lambda: services.store.get(job.id).worker_pid)
    wait_for(lambda: services.store.get(job.id).progress_current)
    os.kill(pid, signal.SIGTERM)
    assert wait_final(services.store, job.id, timeout=20).status is JobStatus.INTERRUPTED


def test_heavy_jobs_queue_behind_the_limit_and_drain(services: Services) -> None:
    first = services.runner.submit("sleep_heavy", {"steps": 4, "step_s": 0.1})
    second = services.runner.submit("sleep_heavy", {"steps": 1, "step_s": 0.01})
    light = services.runner.submit("sleep", {"steps": 1, "step_s": 0.01})
    assert services.store.get(second.id).status is JobStatus.QUEUED  # one training job at a time
    assert wait_final(services.store, light.id).status is JobStatus.SUCCEEDED  # light jobs run beside it
    # nobody calls dispatch here: the first worker starts the queued job when it ends
    assert wait_final(services.store, second.id).status is JobStatus.SUCCEEDED
    assert services.store.get(second.id).started_at >= services.store.get(first.id).finished_at


def test_forceful_cancel_after_grace(services: Services) -> None:
    services.settings.cancel_grace_s = 0.0
    job = services.runner.submit("sleep", {"steps": 1, "step_s": 30})  # no safe point for 30 s
    wait_for(lambda: services.store.get(job.id).worker_pid)
    services.store.request_cancel(job.id)
    assert services.runner.enforce_cancel_grace() == [job.id]
    assert services.store.get(job.id).status is JobStatus.CANCELLED
