"""MCP tool `graph_diff`: what changed in a code base between two graph versions (read-only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool
from pydantic import BaseModel, Field


class GraphDiff(BaseModel):
    codebase: str
    since: str | None = Field(description="The older graph version (None: the current version is the "
                                       "code base's first, so everything counts as added).")
    until: str = Field(description="The newer graph version (the current one).")
    added: int
    removed: int
    changed: int = Field(description="Entities whose own signature, docstring, body, bases, methods or calls changed.")
    affected: int = Field(description="Entities whose only change is derived: new/lost callers or subclasses.")
    by_kind: dict[str, dict[str, int]]
    by_aspect: dict[str, int]
    modules: dict[str, int]
    changes: list[dict[str, Any]] = Field(description="This page: entity, kind, change, file, changed aspects.")
    total: int
    next_offset: int | None = None
    versions: list[dict[str, Any]] = Field(default_factory=list, description="The code base's latest recorded "
                                           "versions, newest last (version, created_at, entity counts of its diff).")


@mcp_tool(read_only=True, destructive=False, idempotent=True)
def graph_diff(
    services: ToolServices,
    codebase: Annotated[str, Field(description="Code base name (from ingest_codebase or validate_environment).")],
    since: Annotated[str | None, Field(description="Older graph version id or dataset name; default the version "
                                       "before the current one (what the last ingest changed).")] = None,
    change: Annotated[Literal["all", "added", "removed", "changed", "affected"], Field(
        description="Only changes of this kind; default all.")] = "all",
    limit: Annotated[int, Field(ge=1, le=200, description="Changes per page, 1-200; default 50.")] = 50,
    offset: Annotated[int, Field(ge=0, description="Changes to skip, from the previous page's next_offset; default 0.")] = 0,
    source: Annotated[Literal["embedded", "neo4j"] | None, Field(description="Graph store to read from; default the server's configured store.")] = None,
) -> GraphDiff:
    """What changed in a code base since a version or dataset.

    What changed in a code base's graph since a version or a dataset: functions, methods and
    classes added, removed, changed (which aspects: signature, docstring, body, bases, methods,
    calls) or affected (callers/subclasses changed elsewhere). Counts plus a paged list.

    Every ingest records a version; use this to decide whether a model is worth updating and
    with what (extract_training_data(objective='knowledge', since=...) builds the delta).
    """
    from graphtune.tools.dataset.since import diff_versions
    from graphtune.tools.graph.versions import read_index
    from graphtune.tools.paging import page

    backend = source or services.settings.graph_backend
    if backend == "neo4j" and not read_index(services.settings, backend, codebase):
        # the diff reads recorded versions (files), not the server: refused only when none is recorded
        from graphtune.tools.graph.neo4j_store import check_neo4j_configured

        check_neo4j_configured(services.settings, "source", asked=source is not None)
    old, new, diff = diff_versions(services.settings, backend, codebase, since)
    listed = [c for c in diff["changes"] if change == "all" or c["change"] == change]
    chunk, total, next_offset = page(listed, limit, offset)
    counts = diff["counts"]
    versions = [{k: v.get(k) for k in ("version", "created_at", "entities")} for v in
                read_index(services.settings, backend, codebase)[-10:]]
    return GraphDiff(codebase=codebase, since=old, until=new, **{k: counts[k] for k in (
        "added", "removed", "changed", "affected", "by_kind", "by_aspect", "modules")},
        changes=chunk, total=total, next_offset=next_offset, versions=versions)
