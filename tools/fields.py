"""`param`: a config field that documents itself, for engine configs and request models alike.

Lives below every layer (pydantic only) so that an engine config (graph/, dataset/, training/)
declares its settings once, with descriptions, without importing the request layer."""

from __future__ import annotations

from typing import Any

from pydantic import Field

__all__ = ["param"]


def param(default: Any = ..., *, description: str, cli_help: str | None = None, **constraints: Any) -> Any:
    """A request field: `description` for agents and people, `cli_help` (optional) adds detail for `--help`."""
    extra = {"cli_help": cli_help} if cli_help else None
    return Field(default, description=description, json_schema_extra=extra, **constraints)
