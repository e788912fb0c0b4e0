"""MCP tool `retrain`: update a model to a changed code base in one call (a chain of jobs)."""

from __future__ import annotations

from typing import Any

from graphtune.tools.requests.base import request_tool
from graphtune.tools.requests.retrain import RetrainRequest
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import JobKind, Resources, mcp_tool
from graphtune.tools.training.retrain import plan_retrain
from pydantic import BaseModel, Field


class RetrainChain(BaseModel):
    chain_id: str = Field(description="The first job's id; cancel_job on any step cancels the chain.")
    job_id: str = Field(description="The last step (promote): its result says promoted or kept, and why.")
    jobs: list[dict[str, Any]] = Field(description="Each step: job_id, kind, status.")
    base_model: str
    new_model: str
    dataset_name: str
    since_dataset: str
    codebase: str
    path: str
    policy: dict[str, Any]
    continued_training: dict[str, Any] = Field(description="The delta step's replay share, learning rate, epochs.")


def promote_resources(params: dict[str, Any], settings: Any) -> Resources:
    """Reads the retrained model (and writes its retrain.json); the alias is one SQL row."""
    return Resources(reads=(f"model:{params['model_b']}",))


PROMOTE_JOB = JobKind("promote", "graphtune.tools.training.retrain:run_promote_job", False,
                      "A retrain's last step: move the alias to the new model if the policy holds.", promote_resources)


@mcp_tool(read_only=False, destructive=False, idempotent=False, open_world=True, jobs=(PROMOTE_JOB,))
@request_tool(RetrainRequest)
def retrain(services: ToolServices, request: RetrainRequest) -> RetrainChain:
    """Retrain on code changes; promote if better (job chain).

    One call for a changed code base: a chain of jobs ingest -> delta dataset since the base
    model's dataset -> continue training from the base model (its recipe, lower lr) -> compare base vs
    new on new/changed and unchanged facts -> promote the alias (`current`, or the alias `base`
    names) only if new-fact accuracy >= `min_new_accuracy` and unchanged facts drop at most
    `max_old_drop` points and general ability stays within `max_general_drop` points of the
    base model's (a model that forgets how to be an assistant is never promoted); otherwise the
    alias stays and the last job's result says why.
    Against forgetting, the delta replays every unchanged fact (`replay_fraction`, default 1) with
    the new/changed ones repeated, and training continues 3 epochs at 0.3x the base model's
    learning rate (measured: bench/RESULTS.md).
    Poll get_training_status(job_id) or subscribe to graphtune://jobs/{job_id}.
    """
    alias = request.base if request.base in services.store.aliases() else "current"
    steps, summary = plan_retrain(services.settings, request.codebase, request.base, request.policy(alias),
                                  continued=request.continued())
    jobs = services.runner.submit_chain(steps)
    return RetrainChain(chain_id=jobs[0].id, job_id=jobs[-1].id,
                        jobs=[{"job_id": j.id, "kind": j.kind, "status": j.status.value} for j in jobs], **summary)
