"""`IngestConfig`: every setting of an ingest, declared once (the `ingest` job's engine config).

The request layer's `IngestRequest` (ingest_codebase, `graphtune ingest`) is this model plus
the MCP/CLI surface and the preflight; the engine (graph/ingest.py) reads only this."""

from __future__ import annotations

import re
from typing import Any, Literal

from graphtune.tools.errors import ConfigError
from graphtune.tools.declare import param
from graphtune.tools.graph.languages import LANGUAGES
from graphtune.tools.graph.schema import CODEBASE_NAME
from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["IngestConfig", "SELECTION_FIELDS"]

SELECTION_FIELDS = ("exclude", "languages", "max_file_bytes")  # which files an ingest reads (file_selection)


class IngestConfig(BaseModel):
    """Parse a code base (Python, TypeScript/JavaScript, Go, Java, Rust) into the graph (stored in the job row)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    path: str | None = param(None, description=(
        "Absolute path of the folder or source file to ingest (a relative one is read from the server's working "
        "folder); give this or package."))
    package: str | None = param(None, description="Installed Python package to ingest by import name, e.g. json.")
    exclude: list[str] | None = param(None, description=(
        "Glob patterns of relative paths to skip; default none."), validate_default=True)
    write_to: Literal["embedded", "neo4j"] = param("embedded", description=(
        "Graph store that receives the code: embedded or neo4j; default embedded."))
    codebase: str | None = param(None, description=(
        "Code base name to add, update or replace; default from the path or package."), cli_help=(
        "Name of the code base this ingest adds to, updates or replaces (default: the package's import name, the "
        "folder's name or the file's stem); an ingest only touches nodes of its own code base."))
    languages: list[str] | None = param(None, description=(
        "Only these languages are parsed; default every supported language."), cli_help=(
        f"Only these languages: {' '.join(LANGUAGES)} (default: all)."))
    # --- not offered to agents or the CLI (tests and benchmarks set them) ---------------------
    max_file_bytes: int = param(2_000_000, ge=1_000, le=50_000_000, description="Larger files are skipped.")
    workers: int = param(0, ge=0, le=64, description="Parser processes; 0 = one per CPU core.")

    def file_selection(self) -> dict[str, Any]:
        """The settings that choose which files are read: recorded with the graph version, so that
        `retrain` and `watch` read the same files again (graph/versions.py last_ingest)."""
        return self.model_dump(include=set(SELECTION_FIELDS))

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, value: list[str] | None) -> list[str]:
        return value or []

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = [name for name in value if name not in LANGUAGES]
        if unknown or not value:
            raise ConfigError(f"`languages`={value!r} names {'unknown ' + repr(unknown) if unknown else 'none'}; "
                              f"graphtune reads {', '.join(LANGUAGES)}.", field="languages",
                              hint="Pass some of those names, e.g. languages=['typescript'], or omit `languages` "
                              "to read them all.")
        return list(dict.fromkeys(value))

    @field_validator("codebase")
    @classmethod
    def _codebase_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(CODEBASE_NAME, value):
            raise ConfigError(f"`codebase`={value!r} is not a valid code base name.", field="codebase",
                              hint="1-64 characters of letters, digits, '_', '-', '.', starting with a letter or "
                              "digit, e.g. 'myproject'.")
        return value
