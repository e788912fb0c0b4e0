"""MCP tool `merge_adapter`: export a standalone model (adapter folded into the base weights)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from graphtune.tools.dataset.params import check_name
from graphtune.tools.errors import ConfigError, TrainingConfigError
from graphtune.tools.jobs import JobView, job_view
from graphtune.tools.training.registry import model_dir
from pydantic import Field

if TYPE_CHECKING:
    from graphtune.server.services import Services


def merge_adapter(
    services: "Services",
    model_name: Annotated[str, Field(description="Model or alias.")],
    output_name: Annotated[str | None, Field(description="New name.")] = None,
) -> JobView:
    """Merge an adapter into its base model (job).

    Merge a LoRA adapter into its base model and save a standalone model folder, as a job.

    Needs memory for the full base model in bf16 (GPU) or fp32 (CPU). The adapter is kept.
    """
    model_name = model_dir(services.settings, model_name).name  # an alias resolves to its model
    output_name = output_name or f"{model_name}-merged"
    try:
        check_name(output_name, "output_name")
    except ValueError as exc:
        raise ConfigError(str(exc), field="output_name") from exc
    if (services.settings.models_dir / output_name).exists():
        raise TrainingConfigError(f"`output_name`={output_name!r} already exists.", field="output_name",
                                  hint="Choose another output_name.")
    job = services.runner.submit("merge", {"model_name": model_name, "output_name": output_name})
    return job_view(services.store, job.id)
