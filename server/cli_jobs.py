"""CLI subcommands that start jobs or show datasets; each calls the MCP tool of the same name.

The flags of a job command are generated from its request model (graphtune.server.cli_args),
so they carry the same names, bounds, defaults and help as the MCP tool's parameters.
"""

from __future__ import annotations

import argparse
from typing import Any

from graphtune.server.cli_args import add_request_arguments, request_kwargs, tool_request
from graphtune.server.cli_common import call_tool, output, start_job
from graphtune.server.cli_training import add_training_commands
from graphtune.tools.requests import ExtractRequest, IngestRequest, JobRequest

__all__ = ["add_commands", "add_job_command", "wait_flag"]


def wait_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", "-w", action="store_true", help="follow progress until the job ends")


def add_job_command(sub: Any, name: str, tool: str, model: type[JobRequest], help_text: str) -> argparse.ArgumentParser:
    """A subcommand whose arguments are `model`'s fields and which queues a job through `tool`."""
    p = sub.add_parser(name, help=help_text, description=help_text)
    add_request_arguments(p, model)
    wait_flag(p)
    p.set_defaults(func=lambda args: start_job(args, tool, **request_kwargs(args, model)))
    return p


def _preview_request() -> Any:
    """preview_dataset's parameters, less the name (the command's optional positional) and metadata (always)."""
    from graphtune.server.cli_common import tool_function

    return tool_request(tool_function("preview_dataset"))


def cmd_datasets(args: argparse.Namespace) -> int:
    if args.name:
        paging = {k: v for k, v in request_kwargs(args, _preview_request()).items()
                  if k not in ("dataset_name", "include_metadata")}
        output(args, call_tool(args, "preview_dataset", dataset_name=args.name, include_metadata=True, **paging))
    else:
        output(args, call_tool(args, "list_datasets"))
    return 0


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    add_job_command(sub, "ingest", "ingest_codebase", IngestRequest,
                    "parse a code base (Python, TS/JS, Go, Java, Rust) into the graph (job)")
    add_job_command(sub, "extract-data", "extract_training_data", ExtractRequest,
                    "build a dataset from the graph (job)")

    p = sub.add_parser("datasets", help="list datasets, or preview one")
    p.add_argument("name", nargs="?", help="Dataset to preview; without it, list every dataset.")
    add_request_arguments(p, _preview_request(), skip=("dataset_name", "include_metadata"))
    p.set_defaults(func=cmd_datasets)

    add_training_commands(sub, add_job_command, wait_flag)

    from graphtune.server.cli_retrain import add_retrain_commands

    add_retrain_commands(sub, wait_flag)
