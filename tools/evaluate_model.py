"""MCP tool `evaluate_model`: closed-book accuracy of a fine-tuned model vs its base (a job).

Its parameters are declared once, in graphtune.tools.requests.model_jobs."""

from __future__ import annotations

from graphtune.tools.jobs import JobView
from graphtune.tools.requests import EvaluateRequest, queue, request_tool
from graphtune.tools.services import ToolServices


@request_tool(EvaluateRequest)
def evaluate_model(services: ToolServices, request: EvaluateRequest) -> JobView:
    """Score a model closed-book on probes (job).

    Ask a knowledge dataset's held-out probe questions closed-book, base vs tuned, as a job.

    Use after training (training already does this once) or to test a model on a newer dataset.
    The result has accuracy per fact type, share of answers that ended cleanly, and retention
    (loss on general text) to show forgetting; poll get_training_status.
    """
    return queue(services, request)
