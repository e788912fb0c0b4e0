"""MCP tool `ingest_codebase`: parse a Python code base into the graph, as a background job.

Its parameters are declared once, in graphtune.tools.requests.ingest."""

from __future__ import annotations

from typing import Any

from graphtune.tools.jobs import JobView
from graphtune.tools.requests import IngestRequest, queue, request_tool
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import JobKind, Resources, graph_resource, mcp_tool


def ingest_resources(params: dict[str, Any], settings: Any) -> Resources:
    return Resources(writes=(graph_resource(params.get("write_to")),))


INGEST_JOB = JobKind("ingest", "graphtune.tools.graph.ingest:run_ingest_job", False,
                     "Parse a Python code base into the graph.", ingest_resources,
                     restart_when_lost=True)  # an ingest is idempotent; a half-done one is redone whole


@mcp_tool(read_only=False, destructive=False, idempotent=True, open_world=True, jobs=(INGEST_JOB,))
@request_tool(IngestRequest)
def ingest_codebase(services: ToolServices, request: IngestRequest) -> JobView:
    """Parse a code base into the graph (job).

    Build or update the code graph from a code base in Python, TypeScript/JavaScript, Go, Java
    or Rust, told apart by file extension (files, classes/interfaces/structs/traits/enums,
    functions, methods, parameters, imports, calls, inheritance, detected Python patterns).
    `languages` (python, typescript, javascript, go, java, rust) keeps only some of them;
    node_modules, vendor, target, dist and build folders are skipped.

    Each ingest is scoped to one named code base: several code bases live side by side, and
    an ingest adds, updates and removes only its own. Returns a job id at once; poll
    get_training_status. Re-running on the same code is incremental: unchanged files are
    skipped. Files that fail to parse are listed in the result (`failures`), files kept without the
    few regions their grammar could not read under `partial`. Several ingests may be queued
    at once (also from other servers on the same data dir): the graph has one writer at a
    time, so the others wait `queued` and start by themselves.
    """
    return queue(services, request)  # fails fast: missing path, no Python file, dead Neo4j
