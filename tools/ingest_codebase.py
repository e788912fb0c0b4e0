"""MCP tool `ingest_codebase`: parse a Python code base into the graph, as a background job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from graphtune.tools.graph.discovery import resolve_root
from graphtune.tools.graph.ingest import IngestParams
from graphtune.tools.jobs import JobView, job_view
from pydantic import Field

if TYPE_CHECKING:
    from graphtune.server.services import Services


def ingest_codebase(
    services: "Services",
    path: Annotated[str | None, Field(description="Folder (or .py file) of Python sources to ingest.")] = None,
    package: Annotated[str | None, Field(description="Or: an installed package's import name, e.g. 'json'.")] = None,
    exclude: Annotated[list[str] | None, Field(description="Glob patterns of relative paths to skip, "
                                               "e.g. ['*/tests/*'].")] = None,
    write_to: Annotated[Literal["embedded", "neo4j"], Field(description="Graph store to write: the embedded "
                                                              "LadybugDB (default) or your Neo4j (NEO4J_URI).")] = "embedded",
) -> JobView:
    """Build or update the code graph from a Python code base (files, classes, functions, methods,
    parameters, imports, calls, inheritance, detected patterns).

    Returns a job id at once; poll get_training_status. Re-running on the same code is
    incremental: unchanged files are skipped. Files that fail to parse are listed in the result.
    Several ingests may be queued at once (also from other servers on the same data dir): the
    graph has one writer at a time, so the others wait `queued` and start by themselves.
    """
    params = IngestParams(path=path, package=package, exclude=exclude or [], write_to=write_to)
    root = resolve_root(params.path, params.package)  # fail fast, before queueing
    params.path, params.package = str(root), None
    job = services.runner.submit("ingest", params.model_dump())
    return job_view(services.store, job.id)
