"""Validated parameters of `extract_training_data` (names from the original design)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from graphtune.tools.dataset.records import NODE_TYPES
from graphtune.tools.errors import ConfigError, GraphtuneError
from graphtune.tools.graph.mapping import GraphMapping
from pydantic import BaseModel, Field, field_validator

KNOWLEDGE_PHRASINGS = 8  # phrasings per fact; measured: see bench/RESULTS.md (knowledge)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def check_name(value: str, field: str) -> str:
    """A safe folder name: lowercase slug, no path separators, no '..', no hidden names."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value) or ".." in value:
        raise ValueError(f"`{field}`={value!r} must be a slug: 1-64 chars of a-z, 0-9, '_', '-', '.', starting "
                         "with a letter or digit, no '..' (e.g. 'httpx-docs-v1')")
    return value


def named_folder(root: Path, name: str, *, field: str, marker: str, missing: type[GraphtuneError], what: str,
                 list_tool: str) -> Path:
    """`root/name` for a validated slug whose folder holds `marker`; symlinked folders count as absent."""
    try:
        check_name(name, field)
    except ValueError as exc:
        raise ConfigError(str(exc), field=field, hint=f"Call {list_tool} to see existing names.") from exc
    folder = root / name
    if folder.is_symlink() or not (folder / marker).is_file():
        raise missing(f"no {what} named `{name}` in {root}.", field=field, hint=f"Call {list_tool}.")
    return folder


class ExtractParams(BaseModel):
    dataset_name: str = Field(description="Name of the dataset folder to create under datasets/ (a slug).")
    node_types: list[Literal["Method", "Class", "Function", "Pattern", "CodeFile"]] = Field(
        default_factory=lambda: list(NODE_TYPES), min_length=1, description="Which node types become records.")
    max_records: int = Field(10000, ge=100, le=100000, description="Cap on records (the best by quality are kept).")
    quality_threshold: float = Field(0.8, ge=0.0, le=1.0, description="Minimum quality score 0..1.")
    objective: Literal["skills", "knowledge"] = Field(
        "skills", description="skills: tasks from code and docstrings (explain, implement, document...); knowledge: "
        "every fact of every entity in many phrasings, with held-out probes for closed-book evaluation.")
    augmentation_factor: int | None = Field(None, ge=1, le=20, description="skills: up to N distinct tasks per "
                                            "record (default 3); knowledge: phrasings per fact (default 8).")
    include_private: bool = Field(False, description="knowledge: also teach _private functions, methods and classes.")
    source: Literal["embedded", "neo4j"] | None = Field(None, description="Graph to read; default from settings.")
    eval_fraction: float = Field(0.1, ge=0.0, le=0.5, description="Share of records (by file) held out for eval.")
    seed: int = Field(42, description="Seed for deterministic ties, caps and splits.")
    output_format: Literal["chat", "alpaca"] = Field("chat", description="chat messages JSONL, or alpaca.")
    overwrite: bool = Field(False, description="Replace an existing dataset of the same name.")
    near_duplicate_threshold: float = Field(0.7, ge=0.3, le=1.0, description="MinHash Jaccard for near-dups; 1 = off.")
    system_prompt: str | None = Field(None, max_length=2000, description="Optional system message in every record.")
    mapping: GraphMapping | None = Field(None, description="Label/property names of a non-graphtune Neo4j graph.")
    codebases: list[str] | None = Field(None, description="Code bases to read (names from ingest_codebase / "
                                        "validate_environment); None = all.")
    since: str | None = Field(None, min_length=1, max_length=64, description="knowledge: build a delta dataset "
                              "of what changed since this dataset (name) or graph version.")
    replay_fraction: float = Field(0.2, ge=0.0, le=0.9, description="knowledge delta: share of the dataset's facts "
                                   "that are unchanged facts replayed (provisional default).")

    @property
    def phrasings(self) -> int:
        """augmentation_factor with the objective's default filled in."""
        return self.augmentation_factor or (KNOWLEDGE_PHRASINGS if self.objective == "knowledge" else 3)

    @field_validator("dataset_name")
    @classmethod
    def _slug(cls, value: str) -> str:
        return check_name(value, "dataset_name")

    @field_validator("node_types")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("codebases")
    @classmethod
    def _codebases(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ConfigError("`codebases` is an empty list.", field="codebases",
                              hint="Name at least one code base, or omit `codebases` to read them all.")
        return None if value is None else list(dict.fromkeys(value))
