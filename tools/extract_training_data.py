"""MCP tool `extract_training_data`: build an instruction dataset from the graph, as a job.

Its parameters are declared once, in graphtune.tools.requests.extract."""

from __future__ import annotations

from typing import Any

from graphtune.tools.jobs import JobView
from graphtune.tools.requests import ExtractRequest, queue, request_tool
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import JobKind, Resources, dataset_resource, graph_resource, mcp_tool


def extract_resources(params: dict[str, Any], settings: Any) -> Resources:
    dataset = dataset_resource(params["dataset_name"])
    return Resources(writes=dataset, reads=(graph_resource(params.get("source") or settings.graph_backend),),
                     creates=() if params.get("overwrite") else dataset)


EXTRACT_JOB = JobKind("extract", "graphtune.tools.dataset.extract:run_extract_job", False,
                      "Build a dataset from the graph.", extract_resources)


@mcp_tool(read_only=False, destructive=False, idempotent=False, open_world=True, jobs=(EXTRACT_JOB,))
@request_tool(ExtractRequest)
def extract_training_data(services: ToolServices, request: ExtractRequest) -> JobView:
    """Build a training dataset from the graph (job).

    Extract a chat-format instruction dataset (train/eval JSONL + metadata) from the code graph.

    objective='knowledge' (to make a model know this code base): every entity's facts in many
    phrasings + probes.jsonl for closed-book evaluation. objective='skills': scores records for
    quality, filters, deduplicates, augments into tasks and splits by file.
    Returns a job id at once; poll get_training_status. The result lists counts per node
    type and task, the score histogram, and any properties the graph lacked.
    """
    return queue(services, request)
