"""MCP tool `list_datasets`."""

from __future__ import annotations

from typing import Annotated

from graphtune.tools.dataset.catalog import DatasetInfo
from graphtune.tools.dataset.catalog import list_datasets as _list
from graphtune.tools.paging import page
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool
from pydantic import BaseModel, Field


class DatasetList(BaseModel):
    datasets: list[DatasetInfo]
    total: int
    next_offset: int | None = None


@mcp_tool(read_only=True, destructive=False, idempotent=True)
def list_datasets(
    services: ToolServices,
    limit: Annotated[int, Field(ge=1, le=100, description="Datasets per page, 1-100; default 20.")] = 20,
    offset: Annotated[int, Field(ge=0, description="Datasets to skip, from the previous page's next_offset; default 0.")] = 0,
) -> DatasetList:
    """List datasets, newest first (paged).

    List the datasets in the datasets folder, newest first, with their example counts. Paginated."""
    chunk, total, next_offset = page(_list(services.settings), limit, offset)
    return DatasetList(datasets=chunk, total=total, next_offset=next_offset)
