"""`setting()` and `param()`: declare a setting once, where the code that uses it lives.

A setting's description, default and bounds are one pydantic field. Engine configs
(graphtune.tools.training.config.LoraJobConfig, graphtune.tools.training.retrain's RetrainPolicy and
ContinuedTraining, graphtune.tools.dataset.delta.DeltaSettings) declare theirs with `setting()`, and the request models (graphtune.tools.requests) are derived from them, so the
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

`param()` is the plain documented field (description, bounds that bind the model it is declared
in, optional `cli_help`): a request's own fields, and the engine configs whose request model
subclasses them (graphtune.tools.graph.ingest_config.IngestConfig,
graphtune.tools.dataset.config.ExtractConfig). `declared(source, name)` shares one declared field
with another model (ExtractConfig takes the delta's replay settings from
graphtune.tools.dataset.delta.DeltaSettings), so it is still declared once.

This module is pydantic only and sits below every layer: engine configs (graph/, dataset/,
training/) declare their settings here without importing the request layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

__all__ = ["KEEP", "Markers", "Offer", "declared", "markers", "param", "request_field", "schema_extra", "setting"]

Offer = Literal["tool", "cli", "engine"]
KEEP: Any = object()  # request_default: the request keeps the engine's default
_MARKERS = ("offer", "request_default", "request_bounds")
_BOUNDS = ("ge", "gt", "le", "lt", "min_length", "max_length")


def param(default: Any = ..., *, description: str, cli_help: str | None = None, **constraints: Any) -> Any:
    """A plain field: `description` for agents and people, `cli_help` (optional) adds detail for `--help`;
    its bounds bind the model that declares it (and its subclasses)."""
    extra = {"cli_help": cli_help} if cli_help else None
    return Field(default, description=description, json_schema_extra=extra, **constraints)


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


def request_field(field: FieldInfo, request_default: Any = KEEP) -> tuple[Any, FieldInfo]:
    """`field` as a request declares it: (annotation with its bounds, FieldInfo with the request's default)."""
    wanted = markers(field).request_default if request_default is KEEP else request_default
    annotation = field.annotation
    if wanted is KEEP:
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    else:
        default = wanted
        annotation = Optional[annotation] if wanted is None else annotation  # noqa: UP045 - flattens a union
    info = Field(default, description=field.description, json_schema_extra=schema_extra(field),
                 **(markers(field).request_bounds or {}))
    return (Annotated[annotation, *field.metadata] if field.metadata else annotation), info


def declared(source: type[BaseModel], name: str) -> Any:
    """`source`'s field `name` (default, bounds, description) for another model's class body that shares
    it; the bounds a user may ask bind that model (a request, or an engine config its request subclasses)."""
    field = source.model_fields[name]
    info = request_field(field)[1]
    info.metadata = [*field.metadata, *info.metadata]
    return info
