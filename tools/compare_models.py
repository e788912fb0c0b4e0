"""MCP tool `compare_models`: two models on the same probes, per fact type, as a job.

Its parameters are declared once, in graphtune.tools.requests.model_jobs."""

from __future__ import annotations

from graphtune.tools.jobs import JobView
from graphtune.tools.requests import CompareRequest, queue, request_tool
from graphtune.tools.services import ToolServices


@request_tool(CompareRequest)
def compare_models(services: ToolServices, request: CompareRequest) -> JobView:
    """A/B two models on the same probes (job).

    Ask two models the same closed-book probes and compare accuracy per fact type (and per
    new/changed/unchanged status for a delta dataset): an A/B table, as a job. Poll
    get_training_status(detail=true) for the table; promote_model the winner.
    """
    return queue(services, request)
