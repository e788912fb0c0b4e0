"""MCP tool `get_training_status`: the state of any job (training, ingest, extraction)."""

from __future__ import annotations

import time
from typing import Annotated

from graphtune.tools.jobs import JobView, job_view
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool
from pydantic import Field


# Below the 60 s request timeout many MCP clients apply (the TypeScript SDK's default).
MAX_WAIT_SECONDS = 50
_ENDED_CHECK_SECONDS = 0.5


@mcp_tool(read_only=True, destructive=False, idempotent=True)
async def get_training_status(
    services: ToolServices,
    job_id: Annotated[str, Field(description="The job's id, as returned by the tool that started it.")],
    detail: Annotated[bool, Field(description="Include params, the full result and up to 50 events; default false.")] = False,
    after_event_id: Annotated[int, Field(ge=0, description="Return only events newer than this event id (paging); default 0.")] = 0,
    wait_seconds: Annotated[float, Field(ge=0, le=MAX_WAIT_SECONDS, description=(
        "Hold the reply up to this many seconds (0-50) and return as soon as the job ends: one call "
        "instead of many polls; default 0 (reply at once)."))] = 0,
) -> JobView:
    """Poll a job's status, progress, ETA and events.

    Get a job's status, progress, ETA, latest metrics (loss, tokens/s...) and recent events.

    Works for every job kind. Cheap: poll it every few seconds while a job runs, or pass
    `wait_seconds` to have the reply held until the job ends (at most 50 s per call). A `queued`
    job says why it has not started (`wait_reason`) and behind which job (`waiting_for`):
    jobs sharing the graph, a dataset or a model run in order; it starts by itself.
    """
    import anyio

    deadline = time.monotonic() + wait_seconds
    while True:
        view = job_view(services.store, job_id, detail=detail, after_event_id=after_event_id)
        left = deadline - time.monotonic()
        if view.status not in ("queued", "running") or left <= 0:
            return view
        await anyio.sleep(min(_ENDED_CHECK_SECONDS, left))
