"""Job views for clients: status with progress, ETA, latest metrics and recent events."""

from __future__ import annotations

import time
from typing import Any

from graphtune.tools.services import JobStoreView
from graphtune.tools.timestamps import iso
from pydantic import BaseModel, Field


class Progress(BaseModel):
    current: float | None = None
    total: float | None = None
    unit: str | None = None
    message: str | None = None
    percent: float | None = None


class EventView(BaseModel):
    id: int
    at: str
    type: str
    data: dict[str, Any]


class JobView(BaseModel):
    """A job as clients see it. Concise by default; `detail` adds params, full result and more events."""

    job_id: str | None = Field(description="null only for a dry run (nothing was queued; the plan is in `result`).")
    kind: str
    status: str
    progress: Progress
    eta_seconds: float | None = Field(None, description="Estimated seconds left: from measured step times once "
                                      "training steps ran, else from the progress rate; the only ETA in a reply.")
    created_at: str | None
    started_at: str | None = None
    finished_at: str | None = None
    elapsed_seconds: float | None = None
    cancel_requested: bool = False
    waiting_for: str | None = Field(None, description="A queued job: the job it waits for (a writer or reader of "
                                    "the same graph/dataset/model, or an earlier job); null when none.")
    wait_reason: str | None = Field(None, description="A queued job: why it has not started yet.")
    depends_on: str | None = Field(None, description="A chain step: the job it starts after (and ends with, "
                                   "if that one fails or is cancelled).")
    chain: str | None = Field(None, description="A chain step (retrain): the chain's id, its first job.")
    latest_metrics: dict[str, Any] | None = None
    recent_events: list[EventView] = []
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    next_event_id: int | None = Field(None, description="Pass as `after_event_id` to page newer events.")


def waiting(job: Any) -> dict[str, str | None]:
    """`waiting_for` / `wait_reason` of a queued job (cleared once it starts)."""
    if job.status.value != "queued":
        return {"waiting_for": None, "wait_reason": None}
    return {"waiting_for": job.waiting_for, "wait_reason": job.wait_reason}


def _eta(job: Any, now: float, metrics: Any = None) -> float | None:
    """One ETA per reply. Once training steps ran, the trainer's own (measured step times, model
    loading excluded), aged by the time since it was logged; else the progress rate since start."""
    if job.status.value != "running":
        return None
    measured = metrics.data.get("eta_seconds") if metrics is not None else None
    if measured is not None:
        return round(max(0.0, measured - max(0.0, now - metrics.at)), 1)
    cur, total = job.progress_current, job.progress_total
    if not job.started_at or not cur or not total or cur >= total:
        return None
    return round((now - job.started_at) / cur * (total - cur), 1)


def _message(job: Any) -> str | None:
    """The last progress message while the job runs; once it ended, what ended (never a stale
    "answering 20 probes..." after success)."""
    status = job.status.value
    if status == "succeeded":
        return f"finished: the {job.kind} job succeeded"
    if status == "failed":
        code = (job.error or {}).get("code")
        return f"ended: the {job.kind} job failed" + (f" ({code}); see `error`" if code else "")
    if status == "cancelled":
        return f"ended: the {job.kind} job was cancelled"
    if status == "interrupted":
        return f"ended: the {job.kind} job was interrupted; resume_fine_tuning continues a training job"
    return job.progress_message


def _percent(job: Any) -> float | None:
    if job.progress_current is None or not job.progress_total:
        return None
    return round(100.0 * job.progress_current / job.progress_total, 1)


def job_progress(job: Any) -> Progress:
    """A job's progress as every tool shows it (the status view, list_jobs): one builder, so a list
    never shows a finished job's stale stage text ("writing") where its status says it finished."""
    return Progress(current=job.progress_current, total=job.progress_total, unit=job.progress_unit,
                    message=_message(job), percent=_percent(job))


ALWAYS_SHOWN = frozenset({"verdict"})  # what an agent needs from a finished job, whatever its size


def _concise_result(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """Keep scalar and short fields so a status poll stays small (and the verdict); `detail=true` shows all."""
    if result is None:
        return None
    return {k: v for k, v in result.items()
            if k in ALWAYS_SHOWN or not isinstance(v, (list, dict)) or len(str(v)) <= 400}


EVENTS_BUDGET_CHARS = 8000  # events in one reply, as compact JSON; page the rest with after_event_id


def _within_budget(events: list[Any], *, keep_newest: bool) -> list[Any]:
    """Drop events beyond the budget: the oldest when showing the newest, else the newest (paging
    forward from after_event_id continues at the first dropped one). One event is always kept."""
    import json

    kept: list[Any] = []
    used = 0
    for event in reversed(events) if keep_newest else events:
        size = len(json.dumps(event.data, separators=(",", ":"), default=str)) + 60
        if kept and used + size > EVENTS_BUDGET_CHARS:
            break
        kept.append(event)
        used += size
    return list(reversed(kept)) if keep_newest else kept


def _event_data(event: Any, error: dict[str, Any] | None) -> dict[str, Any]:
    """An event's data; the final state event's copy of the job's error shrinks to its code, since the
    reply's `error` holds it in full (a converter's output tail made a failed export's poll twice as long).
    An earlier run's error (before a resume) stays whole: it is history the `error` field no longer has."""
    if error and event.type == "state" and event.data.get("error") == error:
        return {**event.data, "error": {"code": error.get("code"), "message": "as in `error`"}}
    return event.data


def planned_view(kind: str, plan: dict[str, Any]) -> JobView:
    """A dry run's reply: no job was queued; `result` holds the plan."""
    return JobView(job_id=None, kind=kind, status="dry_run", created_at=None, result=plan,
                   progress=Progress(message="dry run: nothing was queued; `result` holds the plan"))


def job_view(store: JobStoreView, job_id: str, *, detail: bool = False, after_event_id: int = 0) -> JobView:
    job = store.get(job_id)
    now = time.time()
    n_events = 50 if detail else 5
    if after_event_id:
        events = _within_budget(store.events(job_id, after_id=after_event_id, limit=n_events), keep_newest=False)
    else:
        events = _within_budget(store.events(job_id, limit=n_events, newest=True), keep_newest=True)
    metrics = store.events(job_id, type_="metrics", limit=1, newest=True)
    status = job.status.value
    end = job.finished_at or now
    return JobView(
        job_id=job.id, kind=job.kind, status=status,
        progress=job_progress(job),
        eta_seconds=_eta(job, now, metrics[0] if metrics else None),
        created_at=iso(job.created_at), started_at=iso(job.started_at), finished_at=iso(job.finished_at),
        elapsed_seconds=round(end - job.started_at, 1) if job.started_at else None,
        cancel_requested=bool(job.cancel_requested_at),
        **waiting(job),
        depends_on=job.depends_on, chain=job.chain,
        latest_metrics={k: v for k, v in metrics[0].data.items() if k != "eta_seconds"} if metrics else None,
        recent_events=[EventView(id=e.id, at=iso(e.at) or "", type=e.type, data=_event_data(e, job.error))
                       for e in events],
        result=job.result if detail else _concise_result(job.result),
        error=job.error,
        params=job.params if detail else None,
        next_event_id=events[-1].id if events else after_event_id or None,
    )
