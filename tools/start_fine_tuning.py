"""MCP tool `start_fine_tuning`: queue a LoRA/QLoRA training job (returns a job id at once).

Its parameters are declared once, in graphtune.tools.requests.train."""

from __future__ import annotations

from typing import Any

from graphtune.tools.jobs import JobView, planned_view
from graphtune.tools.requests import TrainRequest, queue, request_tool
from graphtune.tools.services import JobRecordView, ToolServices
from graphtune.tools.tool_registry import JobKind, Resources, dataset_resource, mcp_tool


def train_resources(params: dict[str, Any], settings: Any) -> Resources:
    cfg = params.get("config") or {}
    reads = dataset_resource(cfg.get("dataset_name"))
    if cfg.get("init_adapter"):
        reads += (f"model:{cfg['init_adapter']}",)
    output = () if cfg.get("dry_run") or not cfg.get("output_name") else (f"model:{cfg['output_name']}",)
    return Resources(writes=output, reads=reads, creates=() if params.get("resume") else output)


TRAIN_JOB = JobKind("train", "graphtune.tools.training.train_job:run_train_job", True, "LoRA/QLoRA fine-tuning.",
                    train_resources)  # resume_fine_tuning requeues it


@mcp_tool(read_only=False, destructive=False, idempotent=False, open_world=True, jobs=(TRAIN_JOB,))
@request_tool(TrainRequest)
def start_fine_tuning(services: ToolServices, request: TrainRequest) -> JobView:
    """LoRA/QLoRA fine-tuning (job); dry_run estimates.

    Fine-tune a causal LM on a dataset with LoRA or QLoRA, as a background job.

    Inputs are validated before queueing (dataset lines, base model, ranges). Returns a job
    id at once: poll get_training_status for loss, tokens/s, ETA; cancel_job stops it with a
    checkpoint; resume_fine_tuning continues it. Start with dry_run=true: it answers at once (no
    job) with every resolved setting and its source, token counts, steps, time and memory ranges,
    the device and any one-time base-model conversion.
    """
    if request.dry_run:
        return planned_view("train", request.plan(services))
    return queue(services, request)


def submit_training(services: ToolServices, params: dict[str, Any]) -> JobRecordView:
    """What start_fine_tuning does, for Python callers (tests, benchmarks): the same request model
    (bounds, choices), the same preflight, the same queue."""
    request = TrainRequest.parse({k: v for k, v in params.items() if v is not None})
    return services.runner.submit("train", request.preflight(services))
