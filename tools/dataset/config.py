"""`ExtractConfig`: every setting of a dataset build, declared once (the `extract` job's engine config).

The request layer's `ExtractRequest` (extract_training_data, `graphtune extract-data`) is this
model plus the MCP/CLI surface (what agents and the CLI see, settings refused where they would
have no effect, the preflight); the engines (dataset/extract.py, dataset/knowledge_extract.py)
read only this."""

from __future__ import annotations

from typing import Literal

from graphtune.tools.dataset.delta import DeltaSettings
from graphtune.tools.dataset.names import check_new_name
from graphtune.tools.declare import declared, param
from graphtune.tools.errors import ConfigError
from graphtune.tools.graph.mapping import GraphMapping
from graphtune.tools.graph.records import NODE_TYPES
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

__all__ = ["KNOWLEDGE_PHRASINGS", "ExtractConfig", "NodeType"]

KNOWLEDGE_PHRASINGS = 8  # phrasings per fact; measured: see bench/RESULTS.md (knowledge)
SINCE_MAX_CHARS = 64
NodeType = Literal["Method", "Class", "Function", "Pattern", "CodeFile"]


class ExtractConfig(BaseModel):
    """Build an instruction dataset from the code graph (stored in the job row as it is)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

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
    replay_fraction: float = declared(DeltaSettings, "replay_fraction")  # the delta's, declared once there
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
            return check_new_name(value, "dataset_name", ".jsonl")
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

    @model_validator(mode="after")
    def _delta_needs_knowledge(self) -> "ExtractConfig":
        if self.since is not None and self.objective != "knowledge":
            raise ConfigError("`since` builds a delta of a knowledge dataset; it needs objective='knowledge'.",
                              field="since", hint="Pass objective='knowledge', or omit `since`.")
        return self
