"""CLI flags generated from the request models, and argparse errors in the coded format.

A job command's flags come from its request model (graphtune.tools.requests): positional
arguments from `Model.positional`, one `--flag` per other public field, help from the field's
description (plus its `cli_help`), its bounds, choices and default. Values stay strings:
the request model validates them, so a bad value fails exactly as over MCP:
`error: [invalid_argument] ... (field `x`) Hint: ...`, exit 2, no traceback.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import re
import sys
import types
import typing
from typing import Any, Literal, NoReturn

from graphtune.server.cli_output import cli_wording
from graphtune.tools.errors import ConfigError
from graphtune.tools.requests.base import ToolRequest
from pydantic import create_model
from pydantic.fields import FieldInfo

__all__ = ["CodedArgumentParser", "add_request_arguments", "request_kwargs", "tool_request"]


class CodedArgumentParser(argparse.ArgumentParser):
    """argparse whose own errors (missing or unknown arguments) read like every other error."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {argparse_error(message, self.prog)}", file=sys.stderr)
        raise SystemExit(2)


def argparse_error(message: str, prog: str) -> ConfigError:
    """An argparse message as a coded error naming the argument (`--max-records` -> field max_records)."""
    found = re.search(r"arguments are required: ([\w-]+)", message) or \
        re.search(r"unrecognized arguments: -*([\w-]+)", message) or re.search(r"argument -*([\w-]+)", message)
    field = found.group(1).replace("-", "_") if found else "arguments"
    return ConfigError(message, field=field, hint=f"See `{prog} --help`.")


def _options(annotation: Any) -> list[Any]:
    """The non-null members of a union annotation (or the annotation itself)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _choices(annotation: Any) -> list[str]:
    """The allowed values when the field is a closed set (a Literal, or a list of one); else []."""
    out: list[str] = []
    for option in _options(annotation):
        if typing.get_origin(option) is list:
            option = typing.get_args(option)[0]
        if typing.get_origin(option) is not Literal:
            return []
        out += [str(v) for v in typing.get_args(option)]
    return out


def _metavar(name: str, annotation: Any) -> str:
    choices = _choices(annotation)
    return "{" + ",".join(choices) + "}" if choices else name.upper()


def _is_list(annotation: Any) -> bool:
    return any(typing.get_origin(o) is list for o in _options(annotation))


def _bounds(field: FieldInfo) -> str | None:
    lo = next((getattr(m, "ge", None) for m in field.metadata if getattr(m, "ge", None) is not None), None)
    hi = next((getattr(m, "le", None) for m in field.metadata if getattr(m, "le", None) is not None), None)
    if lo is None and hi is None:
        return None
    return f"{lo}..{hi}" if lo is not None and hi is not None else f">= {lo}" if lo is not None else f"<= {hi}"


def field_help(field: FieldInfo) -> str:
    """Description, detail for people, bounds and the default, in one line (choices are the metavar)."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    parts = [field.description or "", str(extra.get("cli_help") or "")]
    if _bounds(field):
        parts.append(f"Range {_bounds(field)}.")
    stated = "default" in " ".join(parts).lower()  # most descriptions name their default already
    if not field.is_required() and field.default not in (None, False, [], ()) and not stated:
        parts.append(f"Default: {field.default}.")
    return cli_wording(" ".join(p for p in parts if p)).replace("%", "%%")


def add_request_arguments(parser: argparse.ArgumentParser, model: Any, *, skip: tuple[str, ...] = ()) -> None:
    """One argument per public field of request `model` (positionals first, in `model.positional` order);
    `skip` leaves fields to the command (e.g. `watch` names the code base after its folder)."""
    fields = {name: f for name, f in model.public_fields().items() if name not in skip}
    for name in (n for n in model.positional if n in fields):
        field = fields[name]
        parser.add_argument(name, nargs=None if field.is_required() else "?", help=field_help(field))
    for name, field in fields.items():
        if name in model.positional:
            continue
        flag, text = f"--{name.replace('_', '-')}", field_help(field)
        if field.annotation is bool and field.default is True:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif field.annotation is bool:
            parser.add_argument(flag, action="store_true", default=None, help=text)
        elif _is_list(field.annotation):
            parser.add_argument(flag, nargs="+", action="extend", metavar=_metavar(name, field.annotation), help=text)
        else:
            parser.add_argument(flag, metavar=_metavar(name, field.annotation), help=text)


def request_kwargs(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """The arguments the user gave for `model`'s fields (left-out ones take the model's defaults)."""
    return {name: getattr(args, name) for name in model.public_fields() if getattr(args, name, None) is not None}


@functools.cache
def tool_request(fn: Any, positional: tuple[str, ...] = ()) -> type[ToolRequest]:
    """A request model of a tool that has none: its signature is where its parameters are declared.

    Only the CLI needs it (the MCP server reads the signature itself), for flags named like the
    parameters, with their descriptions, bounds and choices."""
    params = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != "services"]
    fields = {p.name: (p.annotation, ... if p.default is inspect.Parameter.empty else p.default) for p in params}
    model = create_model(f"{fn.__name__}_arguments", __base__=ToolRequest, **fields)  # type: ignore[call-overload]
    model.positional = positional
    return model
