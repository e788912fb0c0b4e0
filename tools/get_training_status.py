"""MCP tool `get_training_status`: the state of any job (training, ingest, extraction)."""

from __future__ import annotations

from typing import Annotated

from graphtune.tools.jobs import JobView, job_view
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool
from pydantic import Field


@mcp_tool(read_only=True, destructive=False, idempotent=True)
def get_training_status(
    services: ToolServices,
    job_id: Annotated[str, Field(description="The job's id, as returned by the tool that started it.")],
    detail: Annotated[bool, Field(description="Include params, the full result and up to 50 events; default false.")] = False,
    after_event_id: Annotated[int, Field(ge=0, description="Return only events newer than this event id (paging); default 0.")] = 0,
) -> JobView:
    """Poll a job's status, progress, ETA and events.

    Get a job's status, progress, ETA, latest metrics (loss, tokens/s...) and recent events.

    Works for every job kind. Cheap: poll it every few seconds while a job runs. A `queued`
    job says why it has not started (`wait_reason`) and behind which job (`waiting_for`):
    jobs sharing the graph, a dataset or a model run in order; it starts by itself.
    """
    return job_view(services.store, job_id, detail=detail, after_event_id=after_event_id)
