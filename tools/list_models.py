"""MCP tool `list_models`."""

from __future__ import annotations

from typing import Annotated

from graphtune.tools.paging import page
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool
from graphtune.tools.training.registry import ModelInfo, list_all
from pydantic import BaseModel, Field


class ModelList(BaseModel):
    models: list[ModelInfo]
    total: int
    next_offset: int | None = None


@mcp_tool(read_only=True, destructive=False, idempotent=True)
def list_models(
    services: ToolServices,
    limit: Annotated[int, Field(ge=1, le=100, description="Models per page, 1-100; default 20.")] = 20,
    offset: Annotated[int, Field(ge=0, description="Models to skip, from the previous page's next_offset; default 0.")] = 0,
) -> ModelList:
    """List fine-tuned models, scores, aliases (paged).

    List fine-tuned models (adapters), newest first, with eval loss before/after. Paginated."""
    chunk, total, next_offset = page(list_all(services.store, services.settings), limit, offset)
    return ModelList(models=chunk, total=total, next_offset=next_offset)
