"""MCP tool `list_models`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, Field

from graphtune.tools.training.registry import ModelInfo, list_all

if TYPE_CHECKING:
    from graphtune.server.services import Services


class ModelList(BaseModel):
    models: list[ModelInfo]
    total: int
    next_offset: int | None = None


def list_models(
    services: "Services",
    limit: Annotated[int, Field(ge=1, le=100, description="Page size.")] = 20,
    offset: Annotated[int, Field(ge=0, description="Skip this many (from next_offset).")] = 0,
) -> ModelList:
    """List fine-tuned models (adapters), newest first, with eval loss before/after. Paginated."""
    found = list_all(services.store, services.settings)
    page = found[offset:offset + limit]
    more = offset + len(page) < len(found)
    return ModelList(models=page, total=len(found), next_offset=offset + len(page) if more else None)
