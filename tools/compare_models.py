"""MCP tool `compare_models`: two models on the same probes, per fact type, as a job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from graphtune.tools.errors import ConfigError
from graphtune.tools.jobs import JobView, job_view
from graphtune.tools.training.evaluate_job import probes_folder
from graphtune.tools.training.registry import model_dir
from graphtune.tools.training.submit import check_device
from pydantic import Field

if TYPE_CHECKING:
    from graphtune.server.services import Services


def compare_models(
    services: "Services",
    model_a: Annotated[str, Field(description="Model or alias.")],
    model_b: Annotated[str, Field(description="Model or alias.")],
    dataset_name: Annotated[str, Field(description="Dataset with probes.")],
    max_probes: Annotated[int, Field(ge=1, le=100000, description="Probes.")] = 600,
    device: Annotated[Literal["auto", "cuda", "mps", "cpu"], Field(description="Device.")] = "auto",
) -> JobView:
    """A/B two models on the same probes (job).

    Ask two models the same closed-book probes and compare accuracy per fact type (and per
    new/changed/unchanged status for a delta dataset): an A/B table, as a job. Poll
    get_training_status(detail=true) for the table; promote_model the winner.
    """
    check_device(device)  # before anything is queued
    settings = services.settings
    a, b = model_dir(settings, model_a, "model_a").name, model_dir(settings, model_b, "model_b").name
    if a == b:
        raise ConfigError(f"`model_a` and `model_b` are both `{a}`.", field="model_b",
                          hint="Compare two different models (list_models).")
    probes_folder(settings, dataset_name)
    job = services.runner.submit("compare", {"model_a": a, "model_b": b, "dataset_name": dataset_name,
                                             "max_probes": max_probes, "device": device})
    return job_view(services.store, job.id)
