"""MCP tool `promote_model`: point an alias (`current`, or any name) at a model."""

from __future__ import annotations

from typing import Annotated

from graphtune.tools.dataset.names import check_new_model_name
from graphtune.tools.errors import ConfigError
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool
from graphtune.tools.training.registry import model_dir
from pydantic import BaseModel, Field


class Promotion(BaseModel):
    alias: str
    model_name: str
    previous_model: str | None = Field(None, description="The model the alias pointed to before (None: new alias).")
    aliases: dict[str, str] = Field(description="Every alias -> model name after this change.")


@mcp_tool(read_only=False, destructive=False, idempotent=True)
def promote_model(
    services: ToolServices,
    model_name: Annotated[str, Field(description="Model to point the alias at (list_models name, or another alias).")],
    alias: Annotated[str, Field(description="Alias name to set; default current.")]
    = "current",
) -> Promotion:
    """Point an alias (e.g. current) at a model.

    Point an alias at a model, e.g. make a retrained model `current` once compare_models shows
    it is better. Every tool taking a model name (evaluate_model, merge_adapter, compare_models,
    start_fine_tuning's init_adapter) accepts the alias too; delete_model refuses an aliased model.
    """
    check_new_model_name(alias, "alias", hint="e.g. alias='current'.")
    settings = services.settings
    if (settings.models_dir / alias).exists():
        raise ConfigError(f"`alias`={alias!r} is the name of a model folder; an alias must not shadow a model.",
                          field="alias", hint="Choose another alias (e.g. 'current').")
    name = model_dir(settings, model_name).name
    previous = services.store.set_alias(alias, name)
    return Promotion(alias=alias, model_name=name, previous_model=previous, aliases=services.store.aliases())
