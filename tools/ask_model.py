"""MCP tool `ask_model`: answer one prompt with a base or fine-tuned model (or both), as a job.

The model loads in a worker (`ask` job), never in the server. The tool then waits up to
`wait_seconds` (default 45 s: under the 60 s request timeout many MCP clients use) and returns
the answer when the job is done; otherwise it returns the job id to poll with
get_training_status (the answer is then in `result.answer`). A job that fails within the wait
is reported as the job's coded error.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import anyio
from graphtune.tools.errors import GraphtuneError
from graphtune.tools.requests import AskRequest, request_tool
from graphtune.tools.requests.model_jobs import MAX_NEW_TOKENS
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import JobKind, Resources, mcp_tool
from pydantic import BaseModel, Field

__all__ = ["MAX_NEW_TOKENS", "Answer", "AskResult", "ask_model"]

POLL_S = 0.25


class Answer(BaseModel):
    source: Literal["base", "tuned", "merged"]
    model: str | None
    text: str
    ended_cleanly: bool = Field(description="True when the model ended its turn before max_new_tokens.")
    new_tokens: int


class AskResult(BaseModel):
    job_id: str
    status: str = Field(description="succeeded, or queued/running when the wait ran out (poll the job).")
    model: str
    compare: bool
    answers: list[Answer] | None = None
    device: str | None = None
    load_seconds: float | None = None
    generate_seconds: float | None = None
    next_step: str | None = None


def ask_resources(params: dict[str, Any], settings: Any) -> Resources:
    """Reads the fine-tuned model it answers with (none when asking a base model)."""
    model = params.get("adapter")
    return Resources(reads=(f"model:{model}",) if model else ())


ASK_JOB = JobKind("ask", "graphtune.tools.training.ask_job:run_ask_job", True,
                  "Answer a prompt with a base or fine-tuned model (loads the model: GPU work, so heavy).",
                  ask_resources)


@mcp_tool(read_only=False, destructive=False, idempotent=False, open_world=True, jobs=(ASK_JOB,))
@request_tool(AskRequest)
async def ask_model(services: ToolServices, request: AskRequest) -> AskResult:
    """Try a base or fine-tuned model on one question.

    Ask a model one question and get its answer: a base model, a fine-tuned model, or both side by side.

    Runs as a background job (kind `ask`; it queues behind a running training job, like other
    GPU work). Waits up to wait_seconds for the answer; if not done, returns status queued or
    running and the job_id: poll get_training_status(job_id) and read result.answer (and
    result.base_answer with compare). A .gguf base model converts once on first use (~30 s for
    the built-in 135M model on CPU).
    """
    params = request.preflight(services)  # device, prompt and model checked before queueing
    job = await anyio.to_thread.run_sync(services.runner.submit, request.kind, params)
    model, compare, wait_seconds = request.model, request.compare, request.wait_seconds
    deadline = time.monotonic() + wait_seconds
    record = services.store.get(job.id)
    while not record.status.is_final and time.monotonic() < deadline:
        await anyio.sleep(POLL_S)
        record = services.store.get(job.id)
    status = record.status.value
    if status == "succeeded":
        result = record.result or {}
        return AskResult(job_id=job.id, status=status, model=model, compare=compare,
                         answers=[Answer(**a) for a in result.get("answers", [])], device=result.get("device"),
                         load_seconds=result.get("load_seconds"), generate_seconds=result.get("generate_seconds"))
    if record.status.is_final:  # failed / cancelled / interrupted: the job's coded error
        error = record.error or {}
        failure = GraphtuneError(f"{error.get('message', status)} (ask job {job.id})", field=error.get("field"),
                                 hint=error.get("hint"))
        failure.code = error.get("code") or status
        raise failure
    return AskResult(job_id=job.id, status=status, model=model, compare=compare,
                     next_step=f"Not done within {wait_seconds:g}s ({record.progress_message or status}). Poll "
                     f"get_training_status(job_id='{job.id}') until it succeeds; the answer is result.answer"
                     + (" and result.base_answer." if compare else "."))
