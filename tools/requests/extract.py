"""`ExtractRequest`: every parameter of the extract job (`extract_training_data`, `graphtune extract-data`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from graphtune.tools.dataset.delta import DeltaSettings
from graphtune.tools.dataset.names import check_name
from graphtune.tools.dataset.records import NODE_TYPES
from graphtune.tools.errors import ConfigError
from graphtune.tools.graph.mapping import GraphMapping
from graphtune.tools.requests.base import JobRequest, param
from graphtune.tools.requests.derive import declared
from graphtune.tools.requests.no_effect import NoEffect, refuse_without_effect
from pydantic import field_validator, model_validator

if TYPE_CHECKING:
    from graphtune.tools.services import ToolServices

__all__ = ["KNOWLEDGE_PHRASINGS", "ExtractRequest", "NodeType"]

KNOWLEDGE_PHRASINGS = 8  # phrasings per fact; measured: see bench/RESULTS.md (knowledge)
MIN_FREE_GIB = 0.2
SINCE_MAX_CHARS = 64
NodeType = Literal["Method", "Class", "Function", "Pattern", "CodeFile"]


class ExtractRequest(JobRequest):
    """Build an instruction dataset from the code graph (stored in the job row as it is)."""

    kind: ClassVar[str] = "extract"
    internal: ClassVar[frozenset[str]] = frozenset({"near_duplicate_threshold", "system_prompt", "mapping", "delta_repeats"})
    positional: ClassVar[tuple[str, ...]] = ("dataset_name",)
    cli_only: ClassVar[frozenset[str]] = frozenset({"seed", "output_format"})

    dataset_name: str = param(description="Name of the new dataset folder (a slug, e.g. json-facts).")
    node_types: list[NodeType] | None = param(None, validate_default=True, description=(
        "skills only: graph node types that become records; default all."))
    max_records: int = param(10000, ge=100, le=100000, description=(
        "Keep at most this many records (skills) or entities (knowledge); default 10000."))
    quality_threshold: float = param(0.8, ge=0.0, le=1.0, description=(
        "skills only: minimum docstring-quality score, 0-1; default 0.8."))
    objective: Literal["skills", "knowledge"] = param("skills", description=(
        "skills: coding tasks; knowledge: facts plus held-out probes; default skills."), cli_help=(
        "skills: tasks from code and docstrings (explain, implement, document...); knowledge: every fact of every "
        "entity in many phrasings, with held-out probes for closed-book evaluation."))
    augmentation_factor: int | None = param(None, ge=1, le=20, description=(
        "Variants per item: tasks per record (skills, default 3) or phrasings per fact (knowledge, default 8)."))
    include_private: bool = param(False, description="knowledge only: also teach _private names; default false.",
                                  cli_help="knowledge: also teach _private functions, methods and classes.")
    source: Literal["embedded", "neo4j"] | None = param(None, description=(
        "Graph store to read from; default the server's configured store."))
    eval_fraction: float = param(0.1, ge=0.0, le=0.5, description=(
        "skills only: share of records held out for eval loss, 0-0.5; default 0.1."), cli_help="Split by file.")
    seed: int = param(42, description="Random seed for sampling and the split; default 42.")
    output_format: Literal["chat", "alpaca"] = param("chat", description=(
        "JSONL record format, chat or alpaca; default chat."))
    overwrite: bool = param(False, description=(
        "Replace an existing dataset of the same name; default false."))
    codebases: list[str] | None = param(None, description=(
        "Code base names to read; default every ingested code base."), cli_help="Names from ingest_codebase or "
        "validate_environment.")
    since: str | None = param(None, description=(
        "knowledge only: build a delta since this dataset or graph version."))
    replay_fraction: float = declared(DeltaSettings, "replay_fraction")
    # --- not offered to agents or the CLI (jobs, tests and benchmarks set them) ---------------
    delta_repeats: int | None = declared(DeltaSettings, "delta_repeats")
    near_duplicate_threshold: float = param(0.7, ge=0.3, le=1.0, description="MinHash Jaccard for near-dups; 1 = off.")
    system_prompt: str | None = param(None, max_length=2000, description="Optional system message in every record.")
    mapping: GraphMapping | None = param(None, description="Label/property names of a non-graphtune Neo4j graph.")

    @property
    def phrasings(self) -> int:
        """augmentation_factor with the objective's default filled in."""
        return self.augmentation_factor or (KNOWLEDGE_PHRASINGS if self.objective == "knowledge" else 3)

    @field_validator("dataset_name")
    @classmethod
    def _slug(cls, value: str) -> str:
        try:
            return check_name(value, "dataset_name")
        except ValueError as exc:
            raise ConfigError(str(exc), field="dataset_name", hint="e.g. dataset_name='mylib-docs'.") from exc

    @field_validator("node_types")
    @classmethod
    def _all_or_unique(cls, value: list[str] | None) -> list[str]:
        return list(dict.fromkeys(value)) if value else list(NODE_TYPES)  # none or [] = every node type

    @field_validator("codebases")
    @classmethod
    def _codebases(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ConfigError("`codebases` is an empty list.", field="codebases",
                              hint="Name at least one code base, or omit `codebases` to read them all.")
        return None if value is None else list(dict.fromkeys(value))

    @field_validator("since")
    @classmethod
    def _since(cls, value: str | None) -> str | None:
        if value is not None and not 1 <= len(value) <= SINCE_MAX_CHARS:
            raise ConfigError(f"`since` must be 1..{SINCE_MAX_CHARS} characters.", field="since",
                              hint="Pass a dataset name or a graph version id.")
        return value

    @model_validator(mode="before")
    @classmethod
    def _nothing_ignored(cls, data: Any) -> Any:
        """A setting the chosen objective does not read is refused, not ignored (see no_effect)."""
        if isinstance(data, dict):
            refuse_without_effect(cls, data, _without_effect(data))
        return data

    @model_validator(mode="after")
    def _delta_needs_knowledge(self) -> "ExtractRequest":
        if self.since is not None and self.objective != "knowledge":
            raise ConfigError("`since` builds a delta of a knowledge dataset; it needs objective='knowledge'.",
                              field="since", hint="Pass objective='knowledge', or omit `since`.")
        return self

    def preflight(self, services: "ToolServices") -> dict[str, Any]:
        """Code bases and `since` exist, the name is free, the disk has room."""
        from graphtune.tools.dataset.atomic import ensure_free_space, refuse_existing
        from graphtune.tools.graph.sources import check_embedded_codebases

        settings = services.settings
        source = self.source or settings.graph_backend
        if self.codebases and source == "embedded":
            check_embedded_codebases(settings, self.codebases)
        if self.since is not None:
            from graphtune.tools.graph.versions import delta_bases

            delta_bases(settings, source, self.codebases, self.since)  # names a recorded graph version
        refuse_existing(settings.datasets_dir / self.dataset_name, overwrite=self.overwrite, what="dataset",
                        field="dataset_name")
        ensure_free_space(settings.datasets_dir, MIN_FREE_GIB, "dataset_name")
        return self.model_dump(mode="json", exclude_none=True)


def _without_effect(data: dict[str, Any]) -> list[NoEffect]:
    """The fields the chosen objective (and delta or not) never reads."""
    if data.get("objective") == "knowledge":
        skills_only = "objective='knowledge' teaches every function, method and class of the code bases"
        every_type = set(data.get("node_types") or NODE_TYPES) == set(NODE_TYPES)  # all = the default (stored jobs)
        rules = [] if every_type else [
            NoEffect("node_types", f"{skills_only}; node types choose records only for objective='skills'",
                     "Omit `node_types` (narrow a knowledge dataset with `codebases` or `max_records`), or use "
                     "objective='skills'.")]
        rules += [NoEffect("quality_threshold", f"{skills_only}; the docstring-quality score filters only "
                          "objective='skills' records", "Omit `quality_threshold`, or use objective='skills'."),
                 NoEffect("eval_fraction", "objective='knowledge' holds out closed-book probes (probes.jsonl) "
                          "instead of a share of records", "Omit `eval_fraction`; the probes are the held-out set.")]
        if data.get("since") is None:
            rules += [NoEffect(name, "only a delta dataset (`since`) replays unchanged facts",
                               f"Pass `since` (a dataset or graph version) to build a delta, or omit `{name}`.")
                      for name in ("replay_fraction", "delta_repeats")]
        return rules
    knowledge_only = "it applies to objective='knowledge' only"
    return [NoEffect("include_private", f"{knowledge_only} (skills records come from documented code)",
                     "Omit `include_private`, or use objective='knowledge'."),
            *[NoEffect(name, f"{knowledge_only}, with `since` (a delta dataset)",
                       f"Omit `{name}`, or use objective='knowledge' with `since`.")
              for name in ("replay_fraction", "delta_repeats")]]
