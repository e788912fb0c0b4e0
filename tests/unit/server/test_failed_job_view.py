"""A failed job's status view carries its error once: the final state event used to repeat it whole,
so a failed export (the converter's 1,500-character output tail) cost an agent twice that per poll."""

from __future__ import annotations

import json

from graphtune.server.job_store import JobStatus
from graphtune.tools.jobs import job_view


def test_the_final_state_event_names_the_error_without_repeating_it(job_store) -> None:
    error = {"code": "export_failed", "message": "converter failed (exit 1): " + "Traceback line\n" * 100,
             "field": "model_name", "hint": "See the output above."}
    job = job_store.create("export", {}, heavy=False)
    job_store.claim_runnable(max_jobs=1, max_heavy=1)
    job_store.finish(job.id, JobStatus.FAILED, error=error)
    view = job_view(job_store, job.id)
    assert view.error == error
    [final] = [e for e in view.recent_events if e.data.get("status") == "failed"]
    assert final.data["error"]["code"] == "export_failed" and error["message"] not in json.dumps(final.data)
    assert len(view.model_dump_json()) < len(error["message"]) + 1500
    assert job_store.events(job.id, limit=10, newest=True)[-1].data["error"] == error  # the store keeps it whole
