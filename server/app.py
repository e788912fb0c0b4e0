"""The MCP app factory: builds the server, binds every tool to the services, maps errors.

This is the only place that turns graphtune errors into MCP tool errors: a tool raises a
`GraphtuneError`; the client sees an `isError` result reading `[code] message (field `x`) Hint: fix`.
Arguments the SDK rejects (pydantic) read the same, as `[invalid_argument] ...` (graphtune.server.lean).
"""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from graphtune.server import __version__
from graphtune.server.services import Services
from graphtune.server.lean import CodedToolError, coded_validation_error, lean_tool
from graphtune.server.settings import Settings
from graphtune.server.subscriptions import ResourceWatcher
from graphtune.tools.errors import GraphtuneError
from graphtune.tools.tool_registry import ToolSpec, tools
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations
from pydantic import ValidationError

log = logging.getLogger(__name__)
MAINTENANCE_INTERVAL_S = 2.0

INSTRUCTIONS = """graphtune turns a code knowledge graph into an instruction dataset and fine-tunes an open
model on it with LoRA/QLoRA. Typical flow: validate_environment -> ingest_codebase (or use your
Neo4j graph) -> extract_training_data -> start_fine_tuning. Long work returns a job id at once:
poll get_training_status(job_id) every few seconds (or subscribe to graphtune://jobs/{job_id});
cancel_job / resume_fine_tuning control it. retrain updates a model to a changed code base."""


def bind(fn: Callable[..., Any], services: Services) -> Callable[..., Any]:
    """Return `fn` with its first parameter (`services`) bound, keeping the tool's signature."""
    hints = typing.get_type_hints(fn, include_extras=True, localns={"Services": Services})
    params = list(inspect.signature(fn).parameters.values())[1:]
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in params]
    signature = inspect.Signature(params, return_annotation=hints.get("return", inspect.Signature.empty))

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(services, *args, **kwargs)
            except GraphtuneError as exc:
                raise CodedToolError(str(exc)) from exc
            except ValidationError as exc:  # a model built inside the tool: same coded style
                raise CodedToolError(str(coded_validation_error(exc))) from exc
    else:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(services, *args, **kwargs)
            except GraphtuneError as exc:
                raise CodedToolError(str(exc)) from exc
            except ValidationError as exc:
                raise CodedToolError(str(coded_validation_error(exc))) from exc

    del wrapper.__wrapped__  # inspect must see the bound signature, not the original's
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params} | {"return": signature.return_annotation}
    return wrapper


def _annotations(spec: ToolSpec) -> ToolAnnotations:
    """The hints, without a title (the name says it), as few as say it all (`tools/list` is paid for in
    every session): openWorldHint only when false and idempotentHint only when true (MCP's defaults are
    true and false); a read-only tool states readOnlyHint alone, since MCP defines destructiveHint and
    idempotentHint only for tools that are not read-only."""
    writes = not spec.read_only
    return ToolAnnotations(readOnlyHint=spec.read_only, destructiveHint=spec.destructive if writes else None,
                           idempotentHint=True if writes and spec.idempotent else None,
                           openWorldHint=None if spec.open_world else False)


def summary(fn: Callable[..., Any]) -> str:
    """A tool's description for agents: the first paragraph of its docstring, on one line.

    The rest of the docstring (and README/docs) is for people; agents pay for every word
    of `tools/list` in every session."""
    first = inspect.cleandoc(fn.__doc__ or "").split("\n\n")[0]
    return " ".join(first.split())


def build_tools(settings: Settings, services: Services) -> list[Tool]:
    """Every tool the server offers, bound to `services`, with lean schemas (graphtune.server.lean)."""
    built = []
    for spec in tools():
        if settings.read_only and not spec.read_only:
            continue
        fn = spec.load()
        built.append(lean_tool(bind(fn, services), name=spec.name, description=summary(fn),
                               annotations=_annotations(spec)))
    return built


async def _maintenance_loop(services: Services) -> None:
    """Reconcile crashed jobs, enforce cancel grace periods and start queued jobs, forever."""
    while True:
        try:
            await anyio.to_thread.run_sync(services.runner.tick)
        except Exception:  # keep the loop alive: a locked database now is fine next round
            log.exception("maintenance round failed")
        await anyio.sleep(MAINTENANCE_INTERVAL_S)


class StaticTokenVerifier:
    """Accepts exactly one bearer token (GRAPHTUNE_HTTP_TOKEN), compared in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def verify_token(self, token: str) -> Any:
        import hmac

        from mcp.server.auth.provider import AccessToken

        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token="<redacted>", client_id="graphtune-operator", scopes=[])
        return None


def _auth_kwargs(settings: Settings, http_url: str | None) -> dict[str, Any]:
    if not http_url or settings.http_token is None:
        return {}
    from mcp.server.auth.settings import AuthSettings

    return {"token_verifier": StaticTokenVerifier(settings.http_token.get_secret_value()),
            "auth": AuthSettings(issuer_url=http_url, resource_server_url=f"{http_url}/mcp", required_scopes=None,
                                 validate_token_resource=False)}  # a static operator token has no audience


def create_app(settings: Settings, services: Services | None = None, *, http_url: str | None = None) -> MCPServer:
    """Build the MCP server. Opens the job store and reconciles jobs left by a dead server.

    `http_url` (e.g. http://127.0.0.1:8765) switches on bearer-token auth when a token is set."""
    services = services or Services.open(settings)
    interrupted = services.runner.reconcile()
    if interrupted:
        log.warning("marked %d orphaned job(s) interrupted: %s", len(interrupted), interrupted)

    watcher = ResourceWatcher(services.store)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[Services]:
        services.runner.keep_warm_worker()  # the server lives long enough for a spare worker to pay off
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_maintenance_loop, services)
                tg.start_soon(watcher.run)
                yield services
                tg.cancel_scope.cancel()
        finally:
            services.runner.close_warm_worker()

    app = MCPServer("graphtune", title="graphtune", instructions=INSTRUCTIONS, version=__version__,
                    lifespan=lifespan, tools=build_tools(settings, services), subscriptions=watcher.bus,
                    **_auth_kwargs(settings, http_url))
    from graphtune.tools.resources import register as register_resources

    register_resources(app, services)  # the datasets/models resources
    watcher.install(app)
    app.services = services  # type: ignore[attr-defined]  # handy for tests and transports
    return app
