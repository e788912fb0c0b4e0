"""`IngestRequest`: every parameter of the ingest job (`ingest_codebase`, `graphtune ingest`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from graphtune.tools.errors import ConfigError
from graphtune.tools.graph.discovery import check_root
from graphtune.tools.graph.schema import CODEBASE_NAME
from graphtune.tools.requests.base import JobRequest, param
from pydantic import field_validator

if TYPE_CHECKING:
    from graphtune.tools.services import ToolServices

__all__ = ["IngestRequest"]


class IngestRequest(JobRequest):
    """Parse a code base (Python, TypeScript/JavaScript, Go, Java, Rust) into the graph (stored in the job row)."""

    kind: ClassVar[str] = "ingest"
    internal: ClassVar[frozenset[str]] = frozenset({"max_file_bytes", "workers"})
    positional: ClassVar[tuple[str, ...]] = ("path",)

    path: str | None = param(None, description=(
        "Folder or source file to ingest; give this or package."), cli_help="Folder (or .py file) to ingest.")
    package: str | None = param(None, description="Installed Python package to ingest by import name, e.g. json.",
                                cli_help="Installed package to ingest by import name instead of a path, e.g. 'json'.")
    exclude: list[str] | None = param(None, description=(
        "Glob patterns of relative paths to skip; default none."), validate_default=True,
                                      cli_help="Glob patterns of relative paths to skip.")
    write_to: Literal["embedded", "neo4j"] = param("embedded", description=(
        "Graph store that receives the code: embedded or neo4j; default embedded."),
                                                   cli_help="Which graph store receives it.")
    codebase: str | None = param(None, description=(
        "Code base name to add, update or replace; default from the path or package."), cli_help=(
        "Name of the code base this ingest adds to, updates or replaces (default: the package's import name, the "
        "folder's name or the file's stem); an ingest only touches nodes of its own code base."))
    languages: list[str] | None = param(None, description=(
        "Only these languages are parsed; default every supported language."), cli_help=(
        "Only these languages: python typescript javascript go java rust (default: all)."))
    # --- not offered to agents or the CLI (tests and benchmarks set them) ---------------------
    max_file_bytes: int = param(2_000_000, ge=1_000, le=50_000_000, description="Larger files are skipped.")
    workers: int = param(0, ge=0, le=64, description="Parser processes; 0 = one per CPU core.")

    @field_validator("exclude")
    @classmethod
    def _exclude(cls, value: list[str] | None) -> list[str]:
        return value or []

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str] | None) -> list[str] | None:
        from graphtune.tools.graph.languages import LANGUAGES

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

    def preflight(self, services: "ToolServices") -> dict[str, Any]:
        """The path exists and holds Python; a Neo4j target answers within its timeout. The job gets
        the resolved path (and a package's import name as its code base: the job only sees the path)."""
        root, name = check_root(self.path, self.package, self.codebase, self.languages)
        if self.write_to == "neo4j":
            from graphtune.tools.graph.neo4j_writer import check_neo4j_writable

            check_neo4j_writable(services.settings)
        codebase = self.codebase if self.codebase is not None or not self.package else name
        return self.model_copy(update={"path": str(root), "package": None, "codebase": codebase}).model_dump()
