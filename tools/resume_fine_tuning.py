"""MCP tool `resume_fine_tuning`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from graphtune.tools.jobs import JobView, job_view
from graphtune.tools.training.submit import resume_training
from pydantic import Field

if TYPE_CHECKING:
    from graphtune.server.services import Services


def resume_fine_tuning(
    services: "Services",
    job_id: Annotated[str, Field(description="Job id.")],
) -> JobView:
    """Resume a stopped training job from its last checkpoint.

    Resume a stopped training job from its newest complete checkpoint (same job id).

    The loss curve continues exactly where it stopped (same data order, optimizer and
    scheduler state). To train a finished model further on new data, use start_fine_tuning
    with init_adapter instead.
    """
    job = resume_training(services, job_id)
    return job_view(services.store, job.id)
