"""MCP tool `compare_models`: two models on the same probes, per fact type, as a job.

Its parameters are declared once, in graphtune.tools.requests.model_jobs."""

from __future__ import annotations

from typing import Any

from graphtune.tools.jobs import JobView
from graphtune.tools.requests import CompareRequest, queue, request_tool
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import JobKind, Resources, mcp_tool


def compare_resources(params: dict[str, Any], settings: Any) -> Resources:
    """Reads both models and the dataset's probes."""
    reads = tuple(f"model:{params[k]}" for k in ("model_a", "model_b") if params.get(k))
    return Resources(reads=reads + ((f"dataset:{params['dataset_name']}",) if params.get("dataset_name") else ()))


COMPARE_JOB = JobKind("compare", "graphtune.tools.training.compare_job:run_compare_job", True,
                      "Two models on the same probes, per fact type (A/B).", compare_resources)


@mcp_tool(read_only=False, destructive=False, idempotent=True, jobs=(COMPARE_JOB,))
@request_tool(CompareRequest)
def compare_models(services: ToolServices, request: CompareRequest) -> JobView:
    """A/B two models on the same probes (job).

    Ask two models the same closed-book probes and compare accuracy per fact type (and per
    new/changed/unchanged status for a delta dataset): an A/B table, as a job. Poll
    get_training_status(detail=true) for the table; promote_model the winner.
    """
    return queue(services, request)
