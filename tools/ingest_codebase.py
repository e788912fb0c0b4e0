"""MCP tool `ingest_codebase`: parse a code base (Python, TypeScript/JavaScript, Go, Java, Rust)
into the graph, as a background job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from graphtune.tools.graph.ingest import IngestParams, check_root
from graphtune.tools.jobs import JobView, job_view
from pydantic import Field

if TYPE_CHECKING:
    from graphtune.server.services import Services


def ingest_codebase(
    services: "Services",
    path: Annotated[str | None, Field(description="Folder or file.")] = None,
    package: Annotated[str | None, Field(description="Or installed package.")] = None,
    exclude: Annotated[list[str] | None, Field(description="Globs to skip.")] = None,
    write_to: Annotated[Literal["embedded", "neo4j"], Field(description="Graph store.")] = "embedded",
    codebase: Annotated[str | None, Field(description="Code base name.")] = None,
    languages: Annotated[list[str] | None, Field(description="Default all.")] = None,
) -> JobView:
    """Parse a code base into the code graph (job).

    Build or update the code graph from a code base in Python, TypeScript/JavaScript, Go, Java
    or Rust, told apart by file extension (files, classes/interfaces/structs/traits/enums,
    functions, methods, parameters, imports, calls, inheritance, detected Python patterns).
    `languages` (python, typescript, javascript, go, java, rust) keeps only some of them;
    node_modules, vendor, target, dist and build folders are skipped.

    Each ingest is scoped to one named code base: several code bases live side by side, and
    an ingest adds, updates and removes only its own. Returns a job id at once; poll
    get_training_status. Re-running on the same code is incremental: unchanged files are
    skipped. Files that fail to parse are listed in the result. Several ingests may be queued
    at once (also from other servers on the same data dir): the graph has one writer at a
    time, so the others wait `queued` and start by themselves.
    """
    params = IngestParams(path=path, package=package, exclude=exclude or [], write_to=write_to, codebase=codebase,
                          languages=languages)
    root, name = check_root(params)  # fail fast, before queueing: missing path, no source file
    if params.write_to == "neo4j":
        from graphtune.tools.graph.neo4j_writer import check_neo4j_writable

        check_neo4j_writable(services.settings)  # fail fast (within the timeout) on a dead server
    params.path, params.package = str(root), None
    if params.codebase is None and package:
        params.codebase = name  # keep the package's import name (the job only sees the path)
    job = services.runner.submit("ingest", params.model_dump())
    return job_view(services.store, job.id)
