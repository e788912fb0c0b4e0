"""The `graphtune` command line. Each subcommand is an adapter over the same function the MCP
tool of the same name calls: no logic lives twice.

Flags override environment variables, which override defaults (see graphtune.server.settings).
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from graphtune.server import __version__


def _settings(args: argparse.Namespace):  # noqa: ANN202
    from graphtune.server.settings import load_settings

    return load_settings(home=args.home, graph_backend=args.graph_backend, read_only=getattr(args, "read_only", None),
                         max_concurrent_jobs=args.max_concurrent_jobs,
                         max_concurrent_training_jobs=args.max_concurrent_training_jobs)


def _services(args: argparse.Namespace):  # noqa: ANN202
    from graphtune.server.services import Services

    return Services.open(_settings(args))


def _emit(result: Any) -> None:
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json", exclude_none=True)
    print(json.dumps(result, indent=2, default=str))


def call_tool(args: argparse.Namespace, name: str, **kwargs: Any) -> Any:
    """Run tool `name` in-process with the CLI's services, exactly as the MCP server would."""
    import anyio
    from graphtune.server.app import bind
    from graphtune.server.lean import validate_arguments
    from graphtune.server.tool_registry import TOOLS

    spec = next(s for s in TOOLS if s.name == name)
    fn: Callable[..., Any] = spec.load()
    services = _services(args)
    kwargs = validate_arguments(bind(fn, services), {k: v for k, v in kwargs.items() if v is not None})
    if inspect.iscoroutinefunction(fn):
        return anyio.run(lambda: fn(services, **kwargs))
    return fn(services, **kwargs)


def follow(args: argparse.Namespace, job_id: str, *, quiet: bool = False) -> dict[str, Any]:
    """Poll a job until it ends, printing progress lines to stderr; returns its final view."""
    last = None
    services = _services(args)
    while True:
        services.runner.tick()  # with no server running, the waiting CLI keeps the queue moving
        view = call_tool(args, "get_training_status", job_id=job_id).model_dump(mode="json")
        line = _progress_line(view)
        if line != last and not quiet:
            print(line, file=sys.stderr, flush=True)
            last = line
        if view["status"] not in ("queued", "running"):
            return view
        time.sleep(1.0)


def _progress_line(view: dict[str, Any]) -> str:
    prog = view["progress"]
    parts = [f"[{view['kind']} {view['job_id']}] {view['status']}"]
    if prog.get("total"):
        parts.append(f"{prog['current']:.0f}/{prog['total']:.0f} {prog.get('unit') or ''}".rstrip())
    if prog.get("message"):
        parts.append(prog["message"])
    if view.get("wait_reason"):
        parts.append(view["wait_reason"])
    metrics = view.get("latest_metrics") or {}
    if "loss" in metrics:
        parts.append(f"loss={metrics['loss']:.4f}")
    if view.get("eta_seconds"):
        parts.append(f"eta={view['eta_seconds']:.0f}s")
    return "  ".join(parts)


def cmd_serve(args: argparse.Namespace) -> int:
    from graphtune.server.app import create_app
    from graphtune.server.transports import run

    settings = _settings(args)
    http_url = f"http://{args.host}:{args.port}" if args.transport == "http" else None
    run(create_app(settings, http_url=http_url), settings, args.transport, args.host, args.port)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    report = call_tool(args, "validate_environment")
    _emit(report)
    return 0 if report.ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    if args.follow:
        view = follow(args, args.job_id)
        _emit(view)
        return 0 if view["status"] == "succeeded" else 1
    _emit(call_tool(args, "get_training_status", job_id=args.job_id, detail=args.detail))
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    _emit(call_tool(args, "list_jobs", status=args.status, kind=args.kind, limit=args.limit, offset=args.offset))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    _emit(call_tool(args, "cancel_job", job_id=args.job_id, force=args.force))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphtune", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"graphtune {__version__}")
    parser.add_argument("--home", help="data dir (env GRAPHTUNE_HOME; default: the user data dir, "
                        "e.g. ~/.local/share/graphtune)")
    parser.add_argument("--graph-backend", choices=["embedded", "neo4j"], help="env GRAPHTUNE_GRAPH_BACKEND")
    parser.add_argument("--max-concurrent-jobs", type=int, help="env GRAPHTUNE_MAX_CONCURRENT_JOBS (default 4)")
    parser.add_argument("--max-concurrent-training-jobs", type=int,
                        help="env GRAPHTUNE_MAX_CONCURRENT_TRAINING_JOBS (default 1)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--read-only", action="store_true", default=None, help="serve read-only tools only")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("validate", help="check packages, devices, graph store and folders")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("status", help="show one job (any kind)")
    p.add_argument("job_id")
    p.add_argument("--detail", action="store_true")
    p.add_argument("--follow", "-f", action="store_true", help="poll until the job ends")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("jobs", help="list jobs, newest first")
    p.add_argument("--status")
    p.add_argument("--kind")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--offset", type=int, default=0)
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("cancel", help="cancel a queued or running job")
    p.add_argument("job_id")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_cancel)

    from graphtune.server import (
        cli_jobs,  # ingest / extract-data / train / resume / models / datasets / demo
    )

    cli_jobs.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from graphtune.server.lean import coded_validation_error
    from graphtune.tools.errors import GraphtuneError
    from pydantic import ValidationError

    try:
        return args.func(args)
    except GraphtuneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # bad input never prints a traceback: the same coded message as MCP
        print(f"error: {coded_validation_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
