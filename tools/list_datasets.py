"""MCP tool `list_datasets`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, Field

from graphtune.tools.dataset.catalog import DatasetInfo
from graphtune.tools.dataset.catalog import list_datasets as _list

if TYPE_CHECKING:
    from graphtune.server.services import Services


class DatasetList(BaseModel):
    datasets: list[DatasetInfo]
    total: int
    next_offset: int | None = None


def list_datasets(
    services: "Services",
    limit: Annotated[int, Field(ge=1, le=100, description="Page size.")] = 20,
    offset: Annotated[int, Field(ge=0, description="Skip this many (from next_offset).")] = 0,
) -> DatasetList:
    """List the datasets in the datasets folder, newest first, with their example counts. Paginated."""
    found = _list(services.settings)
    page = found[offset:offset + limit]
    more = offset + len(page) < len(found)
    return DatasetList(datasets=page, total=len(found), next_offset=offset + len(page) if more else None)
