"""MCP tool `retrain`: update a model to a changed code base in one call (a chain of jobs)."""

from __future__ import annotations

from typing import Annotated, Any

from graphtune.tools.tool_registry import JobKind, Resources, mcp_tool
from graphtune.tools.training.retrain import (
    DEFAULT_MAX_GENERAL_DROP_POINTS,
    DEFAULT_MAX_OLD_DROP_POINTS,
    DEFAULT_MIN_NEW_ACCURACY,
    ContinuedTraining,
    RetrainPolicy,
    plan_retrain,
)
from graphtune.tools.services import ToolServices
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
def retrain(
    services: ToolServices,
    codebase: Annotated[str, Field(description="Code base whose changes to learn (it is re-ingested first).")],
    base: Annotated[str, Field(description="Model or alias to continue from; default current.")] = "current",
    min_new_accuracy: Annotated[float, Field(ge=0, le=1, description="Promote only if new-fact probe accuracy reaches this, 0-1; default 0.6.")]
    = DEFAULT_MIN_NEW_ACCURACY,
    max_old_drop: Annotated[float, Field(ge=0, le=100, description="Promote only if old-fact accuracy drops at most this many points, 0-100; default 5.")]
    = DEFAULT_MAX_OLD_DROP_POINTS,
    max_general_drop: Annotated[float, Field(ge=0, le=100, description=(
        "Promote only if general ability (everyday questions) is at most this many points below the base "
        "model's, 0-100; default 5."))] = DEFAULT_MAX_GENERAL_DROP_POINTS,
    replay_fraction: Annotated[float | None, Field(ge=0, le=1, description="Share of unchanged facts replayed against forgetting, 0-1; default 1 (all).")] = None,
    learning_rate: Annotated[float | None, Field(ge=1e-6, le=1e-2, description="Peak learning rate of the delta run; default 0.3x the base model's.")] = None,
    num_epochs: Annotated[int | None, Field(ge=1, le=10, description="Passes over the delta dataset, 1-10; default 3.")] = None,
) -> RetrainChain:
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
    alias = base if base in services.store.aliases() else "current"
    policy = RetrainPolicy(min_new_accuracy=min_new_accuracy, max_old_drop_points=max_old_drop,
                           max_general_drop_points=max_general_drop, alias=alias)
    continued = ContinuedTraining(replay_fraction=replay_fraction, learning_rate=learning_rate, num_epochs=num_epochs)
    steps, summary = plan_retrain(services.settings, codebase, base, policy, continued=continued)
    jobs = services.runner.submit_chain(steps)
    return RetrainChain(chain_id=jobs[0].id, job_id=jobs[-1].id,
                        jobs=[{"job_id": j.id, "kind": j.kind, "status": j.status.value} for j in jobs], **summary)
