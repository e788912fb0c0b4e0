"""MCP tool `preview_dataset`: metadata and a page of records of one dataset."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from graphtune.tools.dataset.catalog import preview, read_metadata
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool
from pydantic import BaseModel, Field


class DatasetPreview(BaseModel):
    name: str
    split: str
    total: int
    records: list[dict[str, Any]]
    metadata: dict[str, Any] | None = None
    next_offset: int | None = None


@mcp_tool(read_only=True, destructive=False, idempotent=True)
def preview_dataset(
    services: ToolServices,
    dataset_name: Annotated[str, Field(description="Dataset name, from list_datasets.")],
    split: Annotated[Literal["train", "eval"], Field(description="Which split to read, train or eval; default train.")] = "train",
    offset: Annotated[int, Field(ge=0, description="Index of the first record shown; default 0.")] = 0,
    limit: Annotated[int, Field(ge=1, le=20, description="Records to show, 1-20; default 3.")] = 3,
    include_metadata: Annotated[bool, Field(description="Also return the dataset's metadata (counts, config); default false.")] = False,
) -> DatasetPreview:
    """Read a few records and the metadata of a dataset.

    Show a few records of a dataset (long texts clipped) and optionally its metadata."""
    rows, total = preview(services.settings, dataset_name, split, offset, limit)
    meta = read_metadata(services.settings, dataset_name) if include_metadata else None
    more = offset + len(rows) < total
    return DatasetPreview(name=dataset_name, split=split, total=total, records=rows, metadata=meta,
                          next_offset=offset + len(rows) if more else None)
