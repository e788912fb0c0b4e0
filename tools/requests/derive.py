"""Request fields derived from the engine's settings, so that no setting is declared twice.

An engine config (LoraJobConfig, retrain's RetrainPolicy and ContinuedTraining, the delta's
DeltaSettings) declares each setting with graphtune.tools.declare.setting; the request models take
the ones users may set from there: the same type, bounds, description and CLI help, with the
request's own default where `request_default` gives one (None widens the type to "or None": left
out, the preset or the engine fills it), and the bounds, which bind the request (what users may ask). Settings offered "engine" stay out of derived requests (a
request carrying one is refused as an unknown argument).
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from graphtune.tools.declare import KEEP, markers, schema_extra
from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo

__all__ = ["cli_only_settings", "declared", "request_field", "settings_fields", "settings_request"]


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


def settings_fields(source: type[BaseModel], names: dict[str, str] | None = None,
                    request_defaults: dict[str, Any] | None = None) -> dict[str, tuple[Any, FieldInfo]]:
    """create_model definitions of `source`'s offered settings; `names` maps a request name to a
    setting's name where they differ, `request_defaults` gives a request its own default."""
    wanted = {v: k for k, v in (names or {}).items()}
    defaults = request_defaults or {}
    return {wanted.get(n, n): request_field(f, defaults.get(n, KEEP)) for n, f in source.model_fields.items()
            if markers(f).offer != "engine"}


def settings_request(name: str, source: type[BaseModel], base: type[BaseModel], module: str) -> type[BaseModel]:
    """A `base` subclass whose fields are `source`'s settings offered to the tool or the CLI, in order."""
    return create_model(name, __base__=base, __module__=module, **settings_fields(source))  # type: ignore[call-overload]


def declared(source: type[BaseModel], name: str) -> Any:
    """`source`'s field `name` (default, bounds, description) for a request class body that shares it."""
    field = source.model_fields[name]
    info = request_field(field)[1]
    info.metadata = [*field.metadata, *info.metadata]
    return info


def cli_only_settings(source: type[BaseModel]) -> frozenset[str]:
    """The settings `source` offers to the CLI but not to the MCP tool."""
    return frozenset(n for n, f in source.model_fields.items() if markers(f).offer == "cli")
