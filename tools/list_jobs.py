"""MCP tool `list_jobs`: jobs newest first, filtered and paginated."""

from __future__ import annotations

from typing import Annotated, Literal

from graphtune.tools.jobs import Progress, iso, job_progress, waiting
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool
from pydantic import BaseModel, Field


class JobSummary(BaseModel):
    job_id: str
    kind: str
    status: str
    created_at: str | None
    finished_at: str | None
    progress: Progress
    error_code: str | None = None
    waiting_for: str | None = Field(None, description="A queued job: the job it waits for.")
    wait_reason: str | None = Field(None, description="A queued job: why it has not started yet.")


class JobList(BaseModel):
    jobs: list[JobSummary]
    total: int
    next_offset: int | None = Field(None, description="Pass as `offset` for the next page; null on the last page.")


@mcp_tool(read_only=True, destructive=False, idempotent=True)
def list_jobs(
    services: ToolServices,
    status: Annotated[Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"] | None,
                      Field(description="Only jobs in this state; default every state.")] = None,
    kind: Annotated[Literal["ingest", "extract", "train", "merge", "export", "evaluate", "ask", "compare", "promote"]
                    | None,
                    Field(description="Only jobs of this kind; default every kind.")] = None,
    limit: Annotated[int, Field(ge=1, le=100, description="Jobs per page, 1-100; default 20.")] = 20,
    offset: Annotated[int, Field(ge=0, description="Jobs to skip, from the previous page's next_offset; default 0.")] = 0,
) -> JobList:
    """List jobs, newest first, filtered (paged).

    List jobs, newest first, optionally filtered by status or kind. Paginated."""
    jobs, total = services.store.list(status=status, kind=kind, limit=limit, offset=offset)
    summaries = [
        JobSummary(job_id=j.id, kind=j.kind, status=j.status.value, created_at=iso(j.created_at),
                   finished_at=iso(j.finished_at),
                   progress=job_progress(j),
                   error_code=(j.error or {}).get("code"), **waiting(j))
        for j in jobs
    ]
    more = offset + len(jobs) < total
    return JobList(jobs=summaries, total=total, next_offset=offset + len(jobs) if more else None)
