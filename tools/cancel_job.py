"""MCP tool `cancel_job`: cooperative cancel, forceful after the grace period."""

from __future__ import annotations

from typing import Annotated

from graphtune.tools.jobs import JobView, job_view
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool
from pydantic import Field


@mcp_tool(read_only=False, destructive=True, idempotent=True)
def cancel_job(
    services: ToolServices,
    job_id: Annotated[str, Field(description="The id of the job to stop.")],
    force: Annotated[bool, Field(description="Kill the worker now, losing progress since the last checkpoint; default false.")] = False,
) -> JobView:
    """Stop a job; training checkpoints first (resumable).

    Cancel a queued or running job.

    A queued job is cancelled at once. A running job stops at its next safe point (training
    saves a checkpoint first, so `resume_fine_tuning` can continue it); if it has not stopped
    within the grace period it is killed. Poll get_training_status to see it end `cancelled`.
    A step of a chain (retrain) cancels the whole chain; `force` kills its running step.
    """
    job = services.store.request_cancel(job_id)
    if force:
        for member in services.store.chain_jobs(job.chain) if job.chain else [job]:
            if member.status.value == "running":
                services.runner.kill(member)
    if services.store.get(job_id).status.is_final:
        services.runner.dispatch()  # what waited behind it (its graph, dataset or model) starts now
    return job_view(services.store, job_id)
