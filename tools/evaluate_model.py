"""MCP tool `evaluate_model`: closed-book accuracy of a fine-tuned model vs its base (a job).

Its parameters are declared once, in graphtune.tools.requests.model_jobs."""

from __future__ import annotations

from typing import Any

from graphtune.tools.jobs import JobView
from graphtune.tools.requests import EvaluateRequest, queue, request_tool
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import JobKind, Resources, mcp_tool


def evaluate_resources(params: dict[str, Any], settings: Any) -> Resources:
    """Reads the model and the dataset's probes; writes the model's evaluation files."""
    return Resources(writes=(f"model:{params['model_name']}",), reads=(f"dataset:{params['dataset_name']}",))


EVALUATE_JOB = JobKind("evaluate", "graphtune.tools.training.evaluate_job:run_evaluate_job", True,
                       "Closed-book probes of a knowledge dataset, base vs tuned.", evaluate_resources)


@mcp_tool(read_only=False, destructive=False, idempotent=True, jobs=(EVALUATE_JOB,))
@request_tool(EvaluateRequest)
def evaluate_model(services: ToolServices, request: EvaluateRequest) -> JobView:
    """Score a model closed-book on probes (job).

    Ask a knowledge dataset's held-out probe questions closed-book, base vs tuned, as a job.

    Use after training (training already does this once) or to test a model on a newer dataset.
    The result has accuracy per fact type, share of answers that ended cleanly, and retention
    (loss on general text) to show forgetting; poll get_training_status.
    """
    return queue(services, request)
