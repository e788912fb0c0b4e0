"""`setting()`: declare a setting once, where the code that uses it lives.

A setting's description, default and bounds are one pydantic field. Engine configs
(graphtune.tools.training.config.LoraJobConfig, graphtune.tools.training.retrain) declare theirs
with `setting()`, and the request models (graphtune.tools.requests) are derived from them, so the
MCP schema, the CLI flags, the docs table and the engine cannot disagree. Besides pydantic's own
arguments a setting says who may set it:

- `offer`: "tool" (the MCP tool and the CLI), "cli" (CLI only: engine internals kept off tools/list,
  which agents pay for in every session) or "engine" (neither: benchmarks and stored jobs set it);
- `request_default`: the default the request has when it differs from the engine's, e.g. None
  where a preset fills the value (or a no-effect check must see whether it was given);
- `cli_help`: detail for people, shown only by `--help`.

The bounds (`ge`, `le`, ...) of a setting users may set are the limits of what a user may ask, so
they bind the request, not the engine: a benchmark or a test may build a config outside them (a
learning rate of 5e-2 on a tiny model), as before. An engine-only setting's bounds bind the config.
These markers ride in `json_schema_extra`; `markers(field)` reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field
from pydantic.fields import FieldInfo

__all__ = ["KEEP", "Markers", "Offer", "markers", "setting"]

Offer = Literal["tool", "cli", "engine"]
KEEP: Any = object()  # request_default: the request keeps the engine's default
_MARKERS = ("offer", "request_default", "request_bounds")
_BOUNDS = ("ge", "gt", "le", "lt", "min_length", "max_length")


def setting(default: Any = ..., *, description: str, cli_help: str | None = None, offer: Offer = "tool",
            request_default: Any = KEEP, **constraints: Any) -> Any:
    """A pydantic field with the markers above; everything else is `Field(...)`'s."""
    extra: dict[str, Any] = {"cli_help": cli_help} if cli_help else {}
    if offer != "tool":
        extra["offer"] = offer
    if request_default is not KEEP:
        extra["request_default"] = request_default
    if offer != "engine" and any(k in constraints for k in _BOUNDS):
        extra["request_bounds"] = {k: constraints.pop(k) for k in _BOUNDS if k in constraints}
    if "default_factory" in constraints:
        return Field(description=description, json_schema_extra=extra or None, **constraints)
    return Field(default, description=description, json_schema_extra=extra or None, **constraints)


@dataclass(frozen=True)
class Markers:
    """What `setting()` recorded beyond pydantic's own arguments."""

    offer: Offer = "tool"
    request_default: Any = KEEP
    cli_help: str | None = None
    request_bounds: dict[str, Any] | None = None


def markers(field: FieldInfo) -> Markers:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return Markers(offer=extra.get("offer", "tool"), request_default=extra.get("request_default", KEEP),
                   cli_help=extra.get("cli_help"), request_bounds=extra.get("request_bounds"))


def schema_extra(field: FieldInfo) -> dict[str, Any] | None:
    """`field`'s json_schema_extra without the markers (what a derived field carries on)."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    kept = {k: v for k, v in extra.items() if k not in _MARKERS}
    return kept or None
