"""Issue 22 item 6: one truth everywhere. A finished job's progress says what ended; every timestamp in
a reply is ISO 8601 text; merged models are models (listed, with lineage, asked as what they are);
an environment check for something not installed says ok: false (and optional ones are not required)."""

from __future__ import annotations

import json
import re
import time

from graphtune.server.job_store import JobStatus
from graphtune.tools.environment import OPTIONAL_PACKAGES, device_checks, package_checks
from graphtune.tools.jobs import job_view
from graphtune.tools.training.ask_target import ask_target
from graphtune.tools.training.registry import list_all

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\+00:00|Z)$")


def _job(store, status: JobStatus, error: dict | None = None) -> str:
    job = store.create("train", {}, heavy=False)
    store.claim_runnable(max_jobs=10, max_heavy=10)
    store.set_progress(job.id, None, None, "probes", "answering 20 probes with the tuned model")
    store.finish(job.id, status, error=error)
    return job.id


def test_a_finished_job_says_what_ended(job_store) -> None:
    done = job_view(job_store, _job(job_store, JobStatus.SUCCEEDED))
    assert done.progress.message == "finished: the train job succeeded"
    failed = job_view(job_store, _job(job_store, JobStatus.FAILED, {"code": "out_of_memory", "message": "x"}))
    assert failed.progress.message.startswith("ended: the train job failed (out_of_memory)")
    assert all(ISO.match(t) for t in (done.created_at, done.finished_at, done.recent_events[0].at))


def test_running_job_keeps_its_progress_message(job_store) -> None:
    job = job_store.create("train", {}, heavy=False)
    job_store.claim_runnable(max_jobs=10, max_heavy=10)
    job_store.set_progress(job.id, 1, 10, "steps", "loss 1.0")
    assert job_view(job_store, job.id).progress.message == "loss 1.0"


def test_models_are_listed_with_iso_timestamps_and_merged_models_with_lineage(services) -> None:
    settings = services.settings
    settings.ensure_dirs()
    (settings.models_dir / "tuned").mkdir()
    (settings.models_dir / "tuned" / "adapter_config.json").write_text("{}")
    (settings.models_dir / "tuned-merged").mkdir()
    (settings.models_dir / "tuned-merged" / "config.json").write_text("{}")
    (settings.models_dir / "old-merged").mkdir()
    (settings.models_dir / "old-merged" / "config.json").write_text("{}")
    (settings.models_dir / "old-merged" / "merge_metadata.json").write_text(json.dumps(
        {"merged_from": "tuned", "base_model": "smollm2-135m-instruct", "created_at": "2026-01-01T00:00:00Z"}))
    services.store.register_model({"name": "tuned", "job_id": "j1", "base_model": "b", "dataset": "d",
                                   "method": "lora", "created_at": time.time() - 5,
                                   "path": str(settings.models_dir / "tuned"), "metrics": {}})
    services.store.register_model({"name": "tuned-merged", "job_id": "j2", "base_model": "b", "dataset": "d",
                                   "method": "merged", "created_at": time.time(),
                                   "path": str(settings.models_dir / "tuned-merged"),
                                   "metrics": {"merged_from": "tuned"}})
    models = {m.name: m for m in list_all(services.store, settings)}
    assert set(models) == {"tuned", "tuned-merged", "old-merged"}
    assert all(ISO.match(m.created_at) for m in models.values())
    merged = models["tuned-merged"]
    assert merged.kind == "merged" and merged.merged_from == "tuned" == merged.parent_model and merged.on_disk
    assert models["old-merged"].kind == "merged" and models["old-merged"].merged_from == "tuned"
    assert models["tuned"].kind == "adapter"
    assert ask_target(settings, "tuned-merged", False)["merged"] == "tuned-merged"


def test_checks_for_what_is_not_installed_are_not_ok(monkeypatch) -> None:
    monkeypatch.setitem(OPTIONAL_PACKAGES, "graphtune-no-such-package", "nothing")
    checks = {c.name: c for c in package_checks()}
    missing = checks["optional:graphtune-no-such-package"]
    assert missing.ok is False and missing.required is False and "not installed" in missing.detail
    assert all(not c.required for name, c in checks.items() if name.startswith("optional:"))
    device = {c.name: c for c in device_checks({"torch": "2", "cuda": False, "mps": False, "bnb": False, "gpus": []})[0]}
    assert device["device:cuda"].ok is False and device["device:cuda"].required is False
    assert device["device:mps"].ok is False and device["qlora"].ok is False
