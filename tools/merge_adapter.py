"""MCP tool `merge_adapter`: export a standalone model (adapter folded into the base weights).

Its parameters are declared once, in graphtune.tools.requests.model_jobs."""

from __future__ import annotations

from typing import Any

from graphtune.tools.jobs import JobView
from graphtune.tools.requests import MergeRequest, queue, request_tool
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import JobKind, Resources, mcp_tool


def merge_resources(params: dict[str, Any], settings: Any) -> Resources:
    output = (f"model:{params['output_name']}",)
    return Resources(writes=output, reads=(f"model:{params['model_name']}",), creates=output)


MERGE_JOB = JobKind("merge", "graphtune.tools.training.merge:run_merge_job", True, "Fold an adapter into its base.",
                    merge_resources)


@mcp_tool(read_only=False, destructive=False, idempotent=False, jobs=(MERGE_JOB,))
@request_tool(MergeRequest)
def merge_adapter(services: ToolServices, request: MergeRequest) -> JobView:
    """Merge an adapter into its base model (job).

    Merge a LoRA adapter into its base model and save a standalone model folder, as a job.

    Needs memory for the full base model in bf16 (GPU) or fp32 (CPU). The adapter is kept.
    """
    return queue(services, request)
