"""Request fields derived from the engine's settings, so that no setting is declared twice.

An engine config (LoraJobConfig, retrain's RetrainPolicy and ContinuedTraining, the delta's
DeltaSettings) declares each setting with graphtune.tools.declare.setting; the request models take
the ones users may set from there: the same type, bounds, description and CLI help, with the
request's own default where `request_default` gives one (None widens the type to "or None": left
out, the preset or the engine fills it), and the bounds, which bind the request (what users may ask).
Settings offered "engine" stay out of derived requests (a request carrying one is refused as an
unknown argument). `request_field` and `declared` live in graphtune.tools.declare (engine configs
share declared fields too); they are re-exported here.
"""

from __future__ import annotations

from typing import Any

from graphtune.tools.declare import KEEP, declared, markers, request_field
from pydantic import BaseModel, create_model
from pydantic.fields import FieldInfo

__all__ = ["cli_only_settings", "declared", "request_field", "settings_fields", "settings_request"]


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


def cli_only_settings(source: type[BaseModel]) -> frozenset[str]:
    """The settings `source` offers to the CLI but not to the MCP tool."""
    return frozenset(n for n, f in source.model_fields.items() if markers(f).offer == "cli")
