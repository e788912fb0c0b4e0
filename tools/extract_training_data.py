"""MCP tool `extract_training_data`: build an instruction dataset from the graph, as a job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from graphtune.tools.dataset.atomic import ensure_free_space, refuse_existing
from graphtune.tools.dataset.params import ExtractParams, check_name
from graphtune.tools.errors import ConfigError
from graphtune.tools.graph.sources import check_embedded_codebases
from graphtune.tools.jobs import JobView, job_view
from pydantic import Field

if TYPE_CHECKING:
    from graphtune.server.services import Services

MIN_FREE_GIB = 0.2
NodeType = Literal["Method", "Class", "Function", "Pattern", "CodeFile"]


def extract_training_data(
    services: "Services",
    dataset_name: Annotated[str, Field(description="New name (slug).")],
    node_types: Annotated[list[NodeType] | None, Field(description="Default all.")] = None,
    max_records: Annotated[int, Field(ge=100, le=100000, description="Keep the best N.")] = 10000,
    quality_threshold: Annotated[float, Field(ge=0.0, le=1.0, description="skills: min score.")] = 0.8,
    objective: Annotated[Literal["skills", "knowledge"], Field(
        description="Tasks or facts+probes.")] = "skills",
    augmentation_factor: Annotated[int | None, Field(ge=1, le=20, description="Tasks/phrasings per item.")] = None,
    include_private: Annotated[bool, Field(description="_names too.")] = False,
    source: Annotated[Literal["embedded", "neo4j"] | None, Field(description="Graph store.")] = None,
    eval_fraction: Annotated[float, Field(ge=0.0, le=0.5, description="Held out.")] = 0.1,
    seed: Annotated[int, Field(description="Seed.")] = 42,
    output_format: Annotated[Literal["chat", "alpaca"], Field(description="JSONL format.")] = "chat",
    overwrite: Annotated[bool, Field(description="Replace.")] = False,
    codebases: Annotated[list[str] | None, Field(description="Default all.")] = None,
    since: Annotated[str | None, Field(description="Delta since.")] = None,
    replay_fraction: Annotated[float, Field(ge=0.0, le=0.9, description="Delta: replayed share.")] = 0.2,
) -> JobView:
    """Build a training dataset from the graph (job).

    Extract a chat-format instruction dataset (train/eval JSONL + metadata) from the code graph.

    objective='knowledge' (to make a model know this code base): every entity's facts in many
    phrasings + probes.jsonl for closed-book evaluation. objective='skills': scores records for
    quality, filters, deduplicates, augments into tasks and splits by file.
    Returns a job id at once; poll get_training_status. The result lists counts per node
    type and task, the score histogram, and any properties the graph lacked.
    """
    try:
        check_name(dataset_name, "dataset_name")
    except ValueError as exc:
        raise ConfigError(str(exc), field="dataset_name", hint="e.g. dataset_name='mylib-docs'.") from exc
    params = ExtractParams(dataset_name=dataset_name, max_records=max_records, quality_threshold=quality_threshold,
                           augmentation_factor=augmentation_factor, objective=objective,
                           include_private=include_private, source=source, eval_fraction=eval_fraction,
                           seed=seed, output_format=output_format, overwrite=overwrite, codebases=codebases,
                           since=since, replay_fraction=replay_fraction,
                           **({"node_types": node_types} if node_types else {}))
    if params.codebases and (params.source or services.settings.graph_backend) == "embedded":
        check_embedded_codebases(services.settings, params.codebases)  # fail fast, before queueing
    if since is not None:
        if objective != "knowledge":
            raise ConfigError("`since` builds a delta of a knowledge dataset; it needs objective='knowledge'.",
                              field="since", hint="Pass objective='knowledge', or omit `since`.")
        from graphtune.tools.graph.versions import delta_bases

        delta_bases(services.settings, params.source or services.settings.graph_backend, params.codebases,
                    since)  # fail fast: a dataset / version that names no recorded graph version
    refuse_existing(services.settings.datasets_dir / dataset_name, overwrite=overwrite, what="dataset",
                    field="dataset_name")
    ensure_free_space(services.settings.datasets_dir, MIN_FREE_GIB, "dataset_name")
    job = services.runner.submit("extract", params.model_dump(mode="json", exclude_none=True))
    return job_view(services.store, job.id)
