"""What every CLI command uses: settings and services from the flags, calling a tool, following a job.

Each subcommand is an adapter over the same tool function the MCP server calls, validated the
same way (graphtune.server.lean.validate_arguments), so both fail alike.
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graphtune.server.cli_output import emit

if TYPE_CHECKING:
    from graphtune.server.services import Services
    from graphtune.server.settings import Settings

__all__ = ["add_tool_command", "call_tool", "follow", "output", "services_from", "settings_from", "start_job"]


def settings_from(args: argparse.Namespace) -> "Settings":
    """Settings with the global flags applied (flag > env > default)."""
    from graphtune.server.settings import load_settings

    return load_settings(home=args.home, graph_backend=args.graph_backend, read_only=getattr(args, "read_only", None),
                         max_concurrent_jobs=args.max_concurrent_jobs,
                         max_concurrent_training_jobs=args.max_concurrent_training_jobs)


def services_from(args: argparse.Namespace) -> "Services":
    from graphtune.server.services import Services

    return Services.open(settings_from(args))


def output(args: argparse.Namespace, result: Any) -> None:
    """Print a result as the user asked: readable (default) or `--json`."""
    emit(result, as_json=bool(getattr(args, "json", False)))


def tool_function(name: str) -> Callable[..., Any]:
    from graphtune.tools.tool_registry import tools

    return next(s for s in tools() if s.name == name).load()


def tool_arguments(args: argparse.Namespace, tool: str, positional: tuple[str, ...] = ()) -> dict[str, Any]:
    """The arguments given on the command line for `tool`'s parameters (flags from add_tool_command)."""
    from graphtune.server.cli_args import request_kwargs, tool_request

    return request_kwargs(args, tool_request(tool_function(tool), positional))


def add_tool_command(sub: Any, command: str, tool: str, help_text: str, positional: tuple[str, ...] = (),
                     func: Callable[[argparse.Namespace], int] | None = None) -> argparse.ArgumentParser:
    """A subcommand whose arguments are `tool`'s parameters; by default it prints the tool's reply."""
    from graphtune.server.cli_args import add_request_arguments, tool_request

    p = sub.add_parser(command, help=help_text)
    add_request_arguments(p, tool_request(tool_function(tool), positional))
    p.set_defaults(func=func or (lambda a: _print(a, call_tool(a, tool, **tool_arguments(a, tool, positional)))))
    return p


def _print(args: argparse.Namespace, result: Any) -> int:
    output(args, result)
    return 0


def call_tool(args: argparse.Namespace, name: str, **kwargs: Any) -> Any:
    """Run tool `name` in-process with the CLI's services, exactly as the MCP server would."""
    import anyio
    from graphtune.server.app import bind
    from graphtune.server.lean import validate_arguments

    fn = tool_function(name)
    services = services_from(args)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    cli_only = getattr(getattr(fn, "request_model", None), "cli_only", frozenset())
    extra = {k: v for k, v in kwargs.items() if k in cli_only}  # CLI-only settings: the request model checks them
    kwargs = validate_arguments(bind(fn, services), {k: v for k, v in kwargs.items() if k not in cli_only}) | extra
    if inspect.iscoroutinefunction(fn):
        return anyio.run(lambda: fn(services, **kwargs))
    return fn(services, **kwargs)


def follow(args: argparse.Namespace, job_id: str, *, quiet: bool = False) -> dict[str, Any]:
    """Poll a job until it ends, showing progress on stderr; returns its final view."""
    from graphtune.server.cli_progress import reporter

    services = services_from(args)
    with reporter(quiet=quiet, plain=bool(getattr(args, "json", False))) as shown:
        while True:
            services.runner.tick()  # with no server running, the waiting CLI keeps the queue moving
            view = call_tool(args, "get_training_status", job_id=job_id).model_dump(mode="json")
            shown.update(view)
            if view["status"] not in ("queued", "running"):
                return view
            time.sleep(1.0)


def start_job(args: argparse.Namespace, tool: str, **kwargs: Any) -> int:
    """Queue a job through `tool`; with `--wait`, follow it and print its outcome."""
    view = call_tool(args, tool, **kwargs)
    if not args.wait or view.job_id is None:  # a dry run answers at once: no job to follow
        output(args, view)
        return 0
    final = follow(args, view.job_id)
    output(args, {k: final[k] for k in ("job_id", "kind", "status", "result", "error") if final.get(k) is not None})
    return 0 if final["status"] == "succeeded" else 1
