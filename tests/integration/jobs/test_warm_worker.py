"""The warm worker (server/warm_worker.py): a spare worker with the training libraries imported,
kept by a server once a heavy job has run, handed the next heavy job, gone when let go."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import wait_final, wait_for
from graphtune.server.job_store import JobStatus
from graphtune.server.services import Services
from graphtune.server.warm_worker import PRELOAD, ready_marker, sweep_stale_markers


@pytest.fixture
def warm_services(services: Services) -> Services:
    services.settings.warm_worker = True
    services.runner.keep_warm_worker()
    yield services
    services.runner.close_warm_worker()


def _spare_pid(services: Services) -> int:
    """The spare's pid once it is ready (its imports done)."""
    services.runner.tick()
    warm = services.runner.warm_worker
    assert warm is not None and warm.alive(), "no spare started after a heavy job"
    wait_for(warm.ready, timeout=120)
    return warm.process.pid


def test_the_next_heavy_job_runs_in_the_ready_spare(warm_services: Services) -> None:
    services = warm_services
    first = services.runner.submit("sleep_heavy", {"steps": 1, "step_s": 0.01})
    cold_pid = wait_final(services.store, first.id).worker_pid
    pid = _spare_pid(services)
    assert pid != cold_pid and ready_marker(services.settings, pid).exists()
    second = services.runner.submit("sleep_heavy", {"steps": 2, "step_s": 0.01})
    final = wait_final(services.store, second.id)
    assert final.status is JobStatus.SUCCEEDED and final.result == {"steps": 2}
    assert final.worker_pid == pid  # the spare ran it
    assert not ready_marker(services.settings, pid).exists()
    log = (services.settings.work_dir / second.id / "worker.log").read_text()
    assert second.id in log  # the spare's output went to the job's log, as a fresh worker's would


def test_no_spare_before_a_heavy_job_and_light_jobs_never_take_it(warm_services: Services) -> None:
    services = warm_services
    light = services.runner.submit("sleep", {"steps": 1, "step_s": 0.01})
    wait_final(services.store, light.id)
    services.runner.tick()
    assert not services.runner.warm_worker.alive()  # no heavy job yet: nothing to keep warm
    heavy = services.runner.submit("sleep_heavy", {"steps": 1, "step_s": 0.01})
    wait_final(services.store, heavy.id)
    pid = _spare_pid(services)
    light = services.runner.submit("sleep", {"steps": 1, "step_s": 0.01})
    assert wait_final(services.store, light.id).worker_pid != pid
    assert services.runner.warm_worker.alive() and services.runner.warm_worker.process.pid == pid


def test_a_let_go_spare_exits_without_a_job(warm_services: Services) -> None:
    services = warm_services
    wait_final(services.store, services.runner.submit("sleep_heavy", {"steps": 1, "step_s": 0.01}).id)
    _spare_pid(services)
    proc = services.runner.warm_worker.process
    services.runner.close_warm_worker()
    assert proc.wait(timeout=30) == 0


def test_the_spare_imports_the_training_libraries() -> None:
    """What the spare saves a job: these modules are imported before it takes one."""
    code = ("import sys; from graphtune.server.warm_worker import PRELOAD, preload; preload(); "
            "print(all(name in sys.modules for name in PRELOAD))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "True", out.stderr[-2000:]
    assert "torch" in PRELOAD and "transformers" in PRELOAD


@pytest.mark.anyio
async def test_the_server_keeps_a_spare_after_a_training_job_and_lets_it_go_on_exit(settings, services) -> None:
    """The wiring in server/app.py: the server's maintenance loop starts the spare, its exit ends it."""
    import anyio
    from graphtune.server.app import create_app
    from mcp.client import Client

    settings.warm_worker = True
    app = create_app(settings, services)
    async with Client(app):
        job = services.runner.submit("sleep_heavy", {"steps": 1, "step_s": 0.01})
        with anyio.fail_after(120):
            while not services.store.get(job.id).status.is_final:
                await anyio.sleep(0.1)
            while services.runner.warm_worker is None or not services.runner.warm_worker.alive():
                await anyio.sleep(0.2)  # the next maintenance round starts it
        spare = services.runner.warm_worker.process
    assert spare.wait(timeout=60) == 0  # the server stopped: the spare left without a job


def test_markers_of_dead_spares_are_swept_and_live_ones_kept(services: Services) -> None:
    """A spare killed outright leaves its ready marker; a later spare with the same PID must not
    look ready before its imports, so starting a spare deletes the markers of dead processes."""
    settings = services.settings
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, live = ready_marker(settings, dead.pid), ready_marker(settings, os.getpid())
    stale.write_text("")
    live.write_text("")
    sweep_stale_markers(settings)
    assert not stale.exists() and live.exists()
