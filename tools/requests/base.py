"""`JobRequest`: the one declaration of a job kind's parameters, and the tool signature built from it.

Each job kind (ingest, extract, train, merge, evaluate, compare, ask) has one pydantic model, and
so has `retrain` (a chain of jobs: a `ToolRequest` without a kind of its own).
Its fields carry the description, default and bounds; its validators carry the cross-field
checks; `preflight(services)` carries the checks that need the data dir or the machine
(existence, names, disk, device) and returns the job's stored params. Where an engine reads a
setting itself, the setting is declared in the engine's config, in the engine's own layer, never
here: the ingest and extract requests subclass their engine configs (graphtune.tools.graph.ingest_config,
graphtune.tools.dataset.config) and add only the surface; the training, retrain (policy and recipe)
and delta-replay requests derive their fields from the engine's `setting()` declarations
(graphtune.tools.requests.derive).
Three things derive from the model, so they cannot drift apart:

- the MCP tool's input schema: `request_tool(Model)` gives the tool function a signature
  made of the model's public fields (the SDK builds the schema from signatures);
- the CLI flags, with help and defaults (graphtune.server.cli_args);
- validation: the SDK checks each field, then the model runs its validators once.

A field's `description` is what agents read: at least three words saying what it does, its unit
and its default as applied (per preset where a preset changes it); tools/list is held to 20k
characters by what it carries (`cli_only` keeps engine internals off the MCP surface), not by
abbreviating. `param(..., cli_help=...)` adds detail for people, shown only by the CLI.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

from graphtune.tools.declare import param
from graphtune.tools.validation import coded_validation_error
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from graphtune.tools.services import ToolServices

if TYPE_CHECKING:
    from graphtune.tools.jobs import JobView

__all__ = ["JobRequest", "ToolRequest", "param", "queue", "request_tool", "tool_parameters"]

R = TypeVar("R", bound="ToolRequest")


class ToolRequest(BaseModel):
    """Base of every request model: forbids unknown fields; says which fields agents and the CLI see."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), defer_build=True)

    internal: ClassVar[frozenset[str]] = frozenset()  # fields stored in the job but not offered to agents or the CLI
    # engine internals offered by the CLI but not on the MCP surface: an agent plans with the preset's values
    # (the dry run shows them) and tools/list stays small without terse descriptions
    cli_only: ClassVar[frozenset[str]] = frozenset()
    positional: ClassVar[tuple[str, ...]] = ()  # CLI positional arguments, in order

    @classmethod
    def parse(cls: type[R], arguments: dict[str, Any]) -> R:
        """Validate `arguments` once; a bad value is a coded `[invalid_argument] ...` ConfigError."""
        try:
            return cls.model_validate(arguments)
        except ValidationError as exc:
            raise coded_validation_error(exc, cls.model_json_schema()) from exc

    @classmethod
    def public_fields(cls) -> dict[str, FieldInfo]:
        """The fields agents and the CLI may set, in declaration order."""
        return {name: f for name, f in cls.model_fields.items() if name not in cls.internal}

    @classmethod
    def agent_fields(cls) -> dict[str, FieldInfo]:
        """The fields the MCP tool offers: the public ones less the CLI-only engine settings."""
        return {name: f for name, f in cls.public_fields().items() if name not in cls.cli_only}


class JobRequest(ToolRequest):
    """A request that queues one job: subclasses set `kind` and `preflight`."""

    kind: ClassVar[str]  # the job kind queued (graphtune.server.job_kinds)

    def preflight(self, services: ToolServices) -> dict[str, Any]:
        """Checks that need the data dir or the machine, before queueing; returns the job's params."""
        return self.model_dump(mode="json", exclude_none=True)


def _tool_annotation(field: FieldInfo) -> Any:
    """The field's type with its bounds and description, as the SDK reads a tool parameter."""
    return Annotated[field.annotation, *field.metadata, Field(description=field.description)]


def tool_parameters(model: type[ToolRequest]) -> list[inspect.Parameter]:
    """The model's public fields as keyword parameters (required ones have no default)."""
    params = []
    for name, field in model.agent_fields().items():
        default = inspect.Parameter.empty if field.is_required() else field.default
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=_tool_annotation(field)))
    return params


def request_tool(model: type[R]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn `fn(services, request)` into a tool function whose parameters are `model`'s public fields.

    The SDK validates each argument against the generated signature; the wrapper then builds
    the request (validators run once) and calls `fn`. Works for sync and async functions."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        services = inspect.Parameter("services", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=ToolServices)
        returns = inspect.signature(fn, eval_str=True).return_annotation

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def wrapper(services: ToolServices, **arguments: Any) -> Any:
                return await fn(services, model.parse(arguments))
        else:
            @functools.wraps(fn)
            def wrapper(services: ToolServices, **arguments: Any) -> Any:
                return fn(services, model.parse(arguments))

        del wrapper.__wrapped__  # inspect must see the generated signature
        params = tool_parameters(model)
        wrapper.__signature__ = inspect.Signature([services, *params], return_annotation=returns)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {"services": ToolServices} | {p.name: p.annotation for p in params} | {"return": returns}
        wrapper.request_model = model  # type: ignore[attr-defined]  # the CLI builds its flags from it
        return wrapper

    return decorate


def queue(services: ToolServices, request: JobRequest) -> "JobView":
    """Preflight `request`, queue its job and return the job's view (the tools that start jobs end here)."""
    from graphtune.tools.jobs import job_view

    job = services.runner.submit(request.kind, request.preflight(services))
    return job_view(services.store, job.id)
