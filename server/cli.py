"""The `graphtune` command line. Each subcommand is an adapter over the same function the MCP
tool of the same name calls: no logic lives twice.

Flags override environment variables, which override defaults (see graphtune.server.settings).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from graphtune.server import __version__
from graphtune.server.cli_args import CodedArgumentParser
from graphtune.server.cli_common import add_tool_command, call_tool, follow, output, settings_from, tool_arguments


def cmd_serve(args: argparse.Namespace) -> int:
    from graphtune.server.app import create_app
    from graphtune.server.transports import run

    settings = settings_from(args)
    http_url = f"http://{args.host}:{args.port}" if args.transport == "http" else None
    run(create_app(settings, http_url=http_url), settings, args.transport, args.host, args.port)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    report = call_tool(args, "validate_environment")
    output(args, report)
    return 0 if report.ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    if args.follow:
        view = follow(args, args.job_id)
        output(args, view)
        return 0 if view["status"] == "succeeded" else 1
    output(args, call_tool(args, "get_training_status", **tool_arguments(args, "get_training_status", ("job_id",))))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line, or, when `argv` runs `serve`, the global flags and `serve` alone: an MCP
    client starts `graphtune serve` for each session, and the other commands' flags are generated from
    every tool's request model (~40 ms of a start-up measured against a bare MCP server)."""
    parser = CodedArgumentParser(prog="graphtune", description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--version", action="version", version=f"graphtune {__version__}")
    parser.add_argument("--home", help="data dir (env GRAPHTUNE_HOME; default: the user data dir, "
                        "e.g. ~/.local/share/graphtune)")
    parser.add_argument("--graph-backend", choices=["embedded", "neo4j"], help="env GRAPHTUNE_GRAPH_BACKEND")
    parser.add_argument("--max-concurrent-jobs", type=int, help="env GRAPHTUNE_MAX_CONCURRENT_JOBS (default 4)")
    parser.add_argument("--max-concurrent-training-jobs", type=int,
                        help="env GRAPHTUNE_MAX_CONCURRENT_TRAINING_JOBS (default 1)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging to stderr")
    parser.add_argument("--json", action="store_true", help="print results as JSON (for scripts)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--read-only", action="store_true", default=None, help="serve read-only tools only")
    p.set_defaults(func=cmd_serve)
    if argv is not None and _invoked_command(parser, argv) == "serve":
        _json_after_commands(sub)
        return parser

    p = sub.add_parser("validate", help="check packages, devices, graph store and folders")
    p.set_defaults(func=cmd_validate)

    p = add_tool_command(sub, "status", "get_training_status", "show one job (any kind)", ("job_id",), cmd_status)
    p.add_argument("--follow", "-f", action="store_true", help="poll until the job ends")
    add_tool_command(sub, "jobs", "list_jobs", "list jobs, newest first")
    add_tool_command(sub, "cancel", "cancel_job", "cancel a queued or running job", ("job_id",))

    from graphtune.server import cli_jobs  # ingest / extract-data / train / ... / demo

    cli_jobs.add_commands(sub)
    _json_after_commands(sub)
    return parser


def _invoked_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """The first word of `argv` that is neither a global flag nor the value of one."""
    takes_value = {opt for action in parser._actions if action.nargs != 0 for opt in action.option_strings}
    tokens = iter(argv)
    for token in tokens:
        if token in takes_value:
            next(tokens, None)
        elif not token.startswith("-"):
            return token
    return None


def _json_after_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """`graphtune jobs --json` works as well as `graphtune --json jobs`."""
    for command in sub.choices.values():
        command.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _for_cli(exc: Exception) -> str:
    """The coded message, its hint naming CLI commands and flags instead of MCP tools."""
    from graphtune.server.cli_output import cli_wording

    text = str(exc)
    if " Hint: " not in text:
        return text
    head, hint = text.split(" Hint: ", 1)
    return f"{head} Hint: {cli_wording(hint)}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a coded argparse error already printed
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from graphtune.server.lean import coded_validation_error
    from graphtune.tools.errors import GraphtuneError
    from pydantic import ValidationError

    try:
        return args.func(args)
    except GraphtuneError as exc:  # bad input never prints a traceback: the same coded message as MCP
        return _report(exc, as_json=bool(getattr(args, "json", False)))
    except ValidationError as exc:
        return _report(coded_validation_error(exc), as_json=bool(getattr(args, "json", False)))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `graphtune ... | head`: the reader left; stop quietly, as a SIGPIPE'd tool does
        return _reader_gone()


def _report(exc: Any, *, as_json: bool) -> int:
    """A coded error on stderr, exit 2: one line for people; with --json, the MCP error's fields
    ({"error": {code, message, field, hint}}), so a script reads an error as it reads a result."""
    if as_json:
        from graphtune.server.cli_output import cli_wording

        error = exc.to_dict()
        if error.get("hint"):  # hints name CLI commands and flags, as the human line does
            error["hint"] = cli_wording(error["hint"])
        print(json.dumps({"error": error}), file=sys.stderr)
    else:
        print(f"error: {_for_cli(exc)}", file=sys.stderr)
    return 2


def _reader_gone() -> int:
    """Point stdout at devnull so that the interpreter's final flush raises nothing either."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 141  # 128 + SIGPIPE, what a shell reports for a command killed by a closed pipe


if __name__ == "__main__":
    raise SystemExit(main())
