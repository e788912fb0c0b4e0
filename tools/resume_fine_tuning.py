"""MCP tool `resume_fine_tuning`."""

from __future__ import annotations

from typing import Annotated, Literal

from graphtune.tools.jobs import JobView, job_view
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool
from graphtune.tools.training.submit import resume_training
from pydantic import Field


@mcp_tool(read_only=False, destructive=False, idempotent=False)
def resume_fine_tuning(
    services: ToolServices,
    job_id: Annotated[str, Field(description="Id of the stopped (failed, cancelled or interrupted) training job.")],
    gpus: Annotated[int | Literal["auto"] | None, Field(description="Resume on this GPU count, or auto; default the run's own count.")] = None,
) -> JobView:
    """Resume a stopped training job from its checkpoint.

    Resume a stopped training job from its newest complete checkpoint (same job id).

    The loss curve continues exactly where it stopped (same data order, optimizer and
    scheduler state). To train a finished model further on new data, use start_fine_tuning
    with init_adapter instead.
    """
    job = resume_training(services, job_id, gpus)
    return job_view(services.store, job.id)
