"""MCP tool `evaluate_model`: closed-book accuracy of a fine-tuned model vs its base (a job)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from graphtune.tools.jobs import JobView, job_view
from graphtune.tools.training.evaluate_job import probes_folder
from graphtune.tools.training.registry import model_dir, read_model_metadata
from graphtune.tools.training.submit import check_device
from pydantic import Field

if TYPE_CHECKING:
    from graphtune.server.services import Services


def evaluate_model(
    services: "Services",
    model_name: Annotated[str, Field(description="Model or alias.")],
    dataset_name: Annotated[str | None, Field(description="Default: its own.")] = None,
    max_probes: Annotated[int, Field(ge=1, le=100000, description="Probes.")] = 600,
    include_base: Annotated[bool, Field(description="Ask base too.")] = True,
    device: Annotated[Literal["auto", "cuda", "mps", "cpu"], Field(description="Device.")] = "auto",
) -> JobView:
    """Score a model closed-book on probes (job).

    Ask a knowledge dataset's held-out probe questions closed-book, base vs tuned, as a job.

    Use after training (training already does this once) or to test a model on a newer dataset.
    The result has accuracy per fact type, share of answers that ended cleanly, and retention
    (loss on general text) to show forgetting; poll get_training_status.
    """
    check_device(device)  # before anything is queued
    model_name = model_dir(services.settings, model_name).name  # an alias resolves to its model
    dataset = dataset_name or (read_model_metadata(services.settings, model_name).get("dataset") or {}).get("name")
    probes_folder(services.settings, dataset or "")
    job = services.runner.submit("evaluate", {"model_name": model_name, "dataset_name": dataset,
                                              "max_probes": max_probes, "include_base": include_base,
                                              "device": device})
    return job_view(services.store, job.id)
