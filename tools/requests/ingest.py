"""`IngestRequest`: the ingest job (`ingest_codebase`, `graphtune ingest`) on the MCP/CLI surface.

Its settings are declared once, in the engine config graphtune.tools.graph.ingest_config; this
adds what only the surface needs (the job kind, what agents and the CLI see, the preflight)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from graphtune.tools.graph.discovery import check_root
from graphtune.tools.graph.ingest_config import IngestConfig
from graphtune.tools.requests.base import JobRequest

if TYPE_CHECKING:
    from graphtune.tools.services import ToolServices

__all__ = ["IngestRequest"]


class IngestRequest(JobRequest, IngestConfig):
    """Parse a code base (Python, TypeScript/JavaScript, Go, Java, Rust) into the graph (stored in the job row)."""

    kind: ClassVar[str] = "ingest"
    internal: ClassVar[frozenset[str]] = frozenset({"max_file_bytes", "workers"})
    positional: ClassVar[tuple[str, ...]] = ("path",)

    def preflight(self, services: "ToolServices") -> dict[str, Any]:
        """The path exists and holds Python; a Neo4j target answers within its timeout. The job gets
        the resolved path (and a package's import name as its code base: the job only sees the path)."""
        root, name = check_root(self.path, self.package, self.codebase, self.languages)
        if self.write_to == "neo4j":
            from graphtune.tools.graph.neo4j_writer import check_neo4j_writable

            check_neo4j_writable(services.settings)
        codebase = self.codebase if self.codebase is not None or not self.package else name
        return self.model_copy(update={"path": str(root), "package": None, "codebase": codebase}).model_dump()
