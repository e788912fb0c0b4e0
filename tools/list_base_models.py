"""MCP tool `list_base_models`: what can be passed as `base_model` (and ask_model's `model`)."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from graphtune.tools.paging import page
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool
from graphtune.tools.training.base_model_inventory import (
    BaseModelEntry,
    inventory,
    offline_note,
)
from pydantic import BaseModel, Field


class BaseModelList(BaseModel):
    base_models: list[BaseModelEntry]
    total: int
    next_offset: int | None = None
    note: str


@mcp_tool(read_only=True, destructive=False, idempotent=True)
async def list_base_models(
    services: ToolServices,
    kind: Annotated[Literal["all", "builtin", "gguf", "folder", "merged", "hub_cache"], Field(
        description="Only base models of this kind; default all.")] = "all",
    offline_only: Annotated[bool, Field(description="Only models that load without network access; default false.")] = False,
    limit: Annotated[int, Field(ge=1, le=100, description="Models per page, 1-100; default 50.")] = 50,
    offset: Annotated[int, Field(ge=0, description="Models to skip, from the previous page's next_offset; default 0.")] = 0,
) -> BaseModelList:
    """Find base_model values usable here (paged).

    List base models usable for start_fine_tuning (`base_model`) and ask_model (`model`).

    Built-in models (with whether they are installed and how to install them), GGUF files and
    model folders under the data dir, merged models, and models in the Hugging Face cache. Each
    entry gives the exact `base_model` string to pass, its size and whether it is usable
    offline. A .gguf is converted once on first use (cached); `converted` says whether that
    already happened. Hub ids not listed still work online (they download on first use).
    """
    entries = await anyio.to_thread.run_sync(inventory, services.settings)
    entries = [e for e in entries if (kind == "all" or e.kind == kind) and (e.usable_offline or not offline_only)]
    chunk, total, next_offset = page(entries, limit, offset)
    return BaseModelList(base_models=chunk, total=total, next_offset=next_offset, note=offline_note())
