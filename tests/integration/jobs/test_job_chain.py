"""Job dependencies (issue 9 part 4): a chain runs step after step; a failed, cancelled or
crashed step ends the steps after it with the reason; nothing is left queued or running."""

from __future__ import annotations

import os
import signal

from conftest import wait_final, wait_for
from graphtune.server.job_store import JobStatus
from graphtune.server.services import Services


def _steps(n: int, **first: object) -> list[tuple[str, dict]]:
    return [("sleep", {"steps": 2, "step_s": 0.02, **(first if i == 0 else {}), **({"echo_parent": True} if i else {})})
            for i in range(n)]


def _none_active(services: Services, chain: str) -> bool:
    return all(job.status.is_final for job in services.store.chain_jobs(chain))


def test_a_chain_runs_each_step_after_the_one_before_and_passes_results(services: Services) -> None:
    jobs = services.runner.submit_chain(_steps(3))
    assert [j.depends_on for j in jobs] == [None, jobs[0].id, jobs[1].id]
    assert {j.chain for j in jobs} == {jobs[0].id}
    waiting = services.store.get(jobs[2].id)
    assert waiting.status is JobStatus.QUEUED and waiting.waiting_for == jobs[1].id
    assert "step before it in its chain" in waiting.wait_reason
    last = wait_final(services.store, jobs[2].id, timeout=60)
    assert last.status is JobStatus.SUCCEEDED and last.result["parent_result"]["steps"] == 2
    done = services.store.chain_jobs(jobs[0].id)
    assert all(j.status is JobStatus.SUCCEEDED for j in done)
    assert done[1].started_at >= done[0].finished_at and done[2].started_at >= done[1].finished_at


def test_a_failed_step_fails_the_rest_of_the_chain_with_the_reason(services: Services) -> None:
    jobs = services.runner.submit_chain(_steps(3, fail=True))
    wait_for(lambda: _none_active(services, jobs[0].id), timeout=60)
    first, second, third = services.store.chain_jobs(jobs[0].id)
    assert first.status is JobStatus.FAILED
    assert second.status is JobStatus.FAILED and second.error["code"] == "parent_failed"
    assert first.id in second.error["message"] and "told to fail" in second.error["message"]
    assert third.status is JobStatus.FAILED and second.id in third.error["message"]


def test_cancelling_any_step_cancels_the_whole_chain(services: Services) -> None:
    jobs = services.runner.submit_chain([("sleep", {"steps": 500, "step_s": 0.05}), *_steps(2)])
    wait_for(lambda: services.store.get(jobs[0].id).progress_current)
    services.store.request_cancel(jobs[2].id)  # the last step stands for the chain
    wait_for(lambda: _none_active(services, jobs[0].id), timeout=30)
    assert [j.status for j in services.store.chain_jobs(jobs[0].id)] == [JobStatus.CANCELLED] * 3


def test_cancelling_a_finished_first_step_cancels_the_rest_of_its_chain(services: Services) -> None:
    jobs = services.runner.submit_chain([("sleep", {"steps": 1, "step_s": 0.01}),
                                         ("sleep", {"steps": 500, "step_s": 0.05}), *_steps(1)])
    wait_for(lambda: services.store.get(jobs[1].id).progress_current, timeout=60)
    assert services.store.request_cancel(jobs[0].id).status is JobStatus.SUCCEEDED  # the chain id
    wait_for(lambda: _none_active(services, jobs[0].id), timeout=30)
    assert [j.status for j in services.store.chain_jobs(jobs[0].id)][1:] == [JobStatus.CANCELLED] * 2


def test_a_crash_mid_chain_and_a_restart_leave_no_step_stuck(services: Services) -> None:
    jobs = services.runner.submit_chain([("sleep", {"steps": 500, "step_s": 0.05}), *_steps(2)])
    pid = wait_for(lambda: services.store.get(jobs[0].id).worker_pid)
    wait_for(lambda: services.store.get(jobs[0].id).progress_current)
    os.killpg(pid, signal.SIGKILL)
    restarted = Services.open(services.settings)  # a new server on the same data dir reconciles at start
    try:
        wait_for(lambda: restarted.runner.reconcile() or _none_active(restarted, jobs[0].id), timeout=30)
        first, second, third = restarted.store.chain_jobs(jobs[0].id)
    finally:
        restarted.store.close()
    assert first.status is JobStatus.INTERRUPTED and "gone" in first.error["message"]
    assert (second.status, third.status) == (JobStatus.FAILED, JobStatus.FAILED)
    assert "interrupted" in second.error["message"]
    assert services.store.list(status="queued")[1] == 0 and services.store.list(status="running")[1] == 0
