"""MCP tool `get_training_status`: the state of any job (training, ingest, extraction)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from graphtune.tools.jobs import JobView, job_view
from pydantic import Field

if TYPE_CHECKING:
    from graphtune.server.services import Services


def get_training_status(
    services: "Services",
    job_id: Annotated[str, Field(description="Job id returned by start_fine_tuning, extract_training_data, "
                                 "ingest_codebase (e.g. job_1a2b3c4d5e6f).")],
    detail: Annotated[bool, Field(description="Include params, the full result and up to 50 events.")] = False,
    after_event_id: Annotated[int, Field(ge=0, description="Only events newer than this id (paging).")] = 0,
) -> JobView:
    """Get a job's status, progress, ETA, latest metrics (loss, tokens/s...) and recent events.

    Works for every job kind. Cheap: poll it every few seconds while a job runs. A `queued`
    job says why it has not started (`wait_reason`) and behind which job (`waiting_for`):
    jobs sharing the graph, a dataset or a model run in order; it starts by itself.
    """
    return job_view(services.store, job_id, detail=detail, after_event_id=after_event_id)
