"""MCP tool `ask_model`: answer one prompt with a base or fine-tuned model (or both), as a job.

The model loads in a worker (`ask` job), never in the server. The tool then waits up to
`wait_seconds` (default 45 s: under the 60 s request timeout many MCP clients use) and returns
the answer when the job is done; otherwise it returns the job id to poll with
get_training_status (the answer is then in `result.answer`). A job that fails within the wait
is reported as the job's coded error.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
from graphtune.tools.errors import GraphtuneError, ModelNotFound, TrainingConfigError
from graphtune.tools.training.base_models import check_base_model
from graphtune.tools.training.registry import model_dir
from graphtune.tools.training.submit import check_device
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from graphtune.server.services import Services

MAX_NEW_TOKENS = 1024
POLL_S = 0.25


class Answer(BaseModel):
    source: Literal["base", "tuned"]
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


def _target(services: "Services", model: str, compare: bool) -> dict[str, Any]:
    """Job params naming what to load; coded errors before anything is queued."""
    settings = services.settings
    try:
        model_dir(settings, model)
        return {"adapter": model}
    except GraphtuneError as exc:  # ModelUnknown, or a name that is no slug (a path, a hub id)
        if compare:
            raise ModelNotFound(f"`model`={model!r} is not a fine-tuned model; compare=true answers with a fine-tuned "
                                "model and its base side by side.", field="model",
                                hint="Call list_models for fine-tuned model names, or set compare=false to ask a "
                                "base model.") from exc
    merged = settings.models_dir / model
    if model and "/" not in model and not model.startswith(".") and (merged / "config.json").is_file() \
            and not merged.is_symlink():
        return {"base_model": str(merged)}  # a merged model (merge_adapter) is a plain model folder
    try:
        base = check_base_model(model, settings, field="model")
    except ModelNotFound as exc:
        raise ModelNotFound(f"`model`={model!r} is neither a fine-tuned model nor a usable base model ({exc.message})",
                            field="model", hint="Call list_models for fine-tuned models, or list_base_models for "
                            "base models (built-in names, .gguf files, folders, cached hub ids).") from exc
    return {"base_model": base}


async def ask_model(
    services: "Services",
    prompt: Annotated[str, Field(min_length=1, max_length=20000, description="Question.")],
    model: Annotated[str, Field(description="Name or id.")],
    compare: Annotated[bool, Field(description="Ask its base too.")] = False,
    system_prompt: Annotated[str | None, Field(max_length=4000, description="System message.")] = None,
    max_new_tokens: Annotated[int, Field(ge=1, le=MAX_NEW_TOKENS, description="Token cap.")] = 128,
    timeout_seconds: Annotated[int, Field(ge=5, le=1800, description="Generation limit.")] = 300,
    wait_seconds: Annotated[float, Field(ge=0, le=120, description="Then a job id.")] = 45,
    device: Annotated[Literal["auto", "cuda", "mps", "cpu"], Field(description="Device.")] = "auto",
) -> AskResult:
    """Try a base or fine-tuned model on one question.

    Ask a model one question and get its answer: a base model, a fine-tuned model, or both side by side.

    Runs as a background job (kind `ask`; it queues behind a running training job, like other
    GPU work). Waits up to wait_seconds for the answer; if not done, returns status queued or
    running and the job_id: poll get_training_status(job_id) and read result.answer (and
    result.base_answer with compare). A .gguf base model converts once on first use (~30 s for
    the built-in 135M model on CPU).
    """
    check_device(device)  # before anything is queued
    if not prompt.strip():
        raise TrainingConfigError("`prompt` is empty.", field="prompt", hint="Pass the question to answer.")
    params = {**_target(services, model, compare), "prompt": prompt, "compare": compare,
              "system_prompt": system_prompt, "max_new_tokens": max_new_tokens, "timeout_seconds": timeout_seconds,
              "device": device}
    job = await anyio.to_thread.run_sync(services.runner.submit, "ask", params)
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
