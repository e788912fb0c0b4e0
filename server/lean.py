"""The lean tool surface: compact JSON schemas and replies, and coded argument errors.

An agent pays for `tools/list` on every session, so what the SDK derives from each tool's
signature is trimmed once, when the app is built (see `create_app`):

- input schemas keep names, types, ranges, enums, real defaults and the short description;
  pydantic's titles go, `$defs` are inlined, an enum carries no redundant `type`, and an
  optional parameter whose default is null (or a boolean defaulting to false, or a paging
  offset defaulting to its minimum 0) is advertised without the default (leave it out to get it; an explicit null is still accepted);
- output schemas are generic (`{"type": "object"}`): `structuredContent` is still returned and
  validated against the full pydantic model, but its shape lives in README and docs/tools.md
  instead of being re-sent every session (it was over half of the 73.5k characters);
- the text content beside `structuredContent` is compact JSON (no indentation).

Tool descriptions are the first docstring paragraph (one line), parameter descriptions the
short `Field(description=...)`: see graphtune.server.app.summary and tool_registry.

Argument validation errors from the SDK (pydantic) are rendered like every other error:
`[invalid_argument] <what was wrong> (field `x`) Hint: <how to fix>`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from graphtune.tools.errors import ConfigError
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools.base import Tool
from mcp.types import CallToolResult, TextContent
from pydantic import ValidationError


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = dict(defs[ref.split("/")[-1]])
            return _inline({**target, **{k: v for k, v in node.items() if k != "$ref"}}, defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _strip_titles(node: Any, *, in_properties: bool = False) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "title" and not in_properties:
                continue
            out[key] = _strip_titles(value, in_properties=(key == "properties" and not in_properties))
        return out
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def _untyped_enums(node: Any) -> Any:
    """An `enum` or `const` needs no `type` beside it."""
    if isinstance(node, dict):
        drop = ("enum" in node or "const" in node) and node.get("type") in ("string", "integer")
        return {k: _untyped_enums(v) for k, v in node.items() if not (drop and k == "type")}
    if isinstance(node, list):
        return [_untyped_enums(v) for v in node]
    return node


def _lean_property(prop: dict[str, Any]) -> dict[str, Any]:
    """A boolean defaulting to false, an integer defaulting to its minimum 0 (offsets) and an optional
    parameter defaulting to null are advertised without their default (null is still accepted)."""
    prop = _untyped_enums(prop)
    zero_floor = prop.get("type") == "integer" and prop.get("default") == 0 and prop.get("minimum") == 0
    if (prop.get("type") == "boolean" and prop.get("default") is False) or zero_floor:
        prop = {k: v for k, v in prop.items() if k != "default"}
    if "default" not in prop or prop["default"] is not None:
        return prop
    prop = {k: v for k, v in prop.items() if k != "default"}
    options = [o for o in prop.get("anyOf", []) if o != {"type": "null"}]
    if "anyOf" in prop:
        rest = {k: v for k, v in prop.items() if k != "anyOf"}
        prop = {**options[0], **rest} if len(options) == 1 else {"anyOf": options, **rest}
    return _lean_property(prop)


def compact_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Names, types, ranges, enums, real defaults and descriptions; nothing else."""
    schema = _strip_titles(_inline(schema, schema.get("$defs", {})))
    props = {name: _lean_property(prop) for name, prop in schema.get("properties", {}).items()}
    out: dict[str, Any] = {"type": "object", "properties": props}
    if schema.get("required"):
        out["required"] = schema["required"]
    return out


def compact_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A generic object schema. Structured content is still returned (and checked server-side
    against the full pydantic model), but its shape is documented in README/docs instead of being
    re-sent in every session: it was over half of `tools/list` (the job view alone nine times)."""
    return {"type": "object"}


def _range(prop: dict[str, Any]) -> str | None:
    for option in [prop, *prop.get("anyOf", [])]:
        lo = option.get("minimum", option.get("exclusiveMinimum", option.get("minLength")))
        hi = option.get("maximum", option.get("exclusiveMaximum", option.get("maxLength")))
        if lo is not None or hi is not None:
            unit = " characters" if "minLength" in option or "maxLength" in option else ""
            if lo is not None and hi is not None:
                return f"{lo}..{hi}{unit}"
            return f">= {lo}{unit}" if lo is not None else f"<= {hi}{unit}"
    return None


def _expected(prop: dict[str, Any]) -> str:
    options = [prop, *prop.get("anyOf", [])]
    kinds = [o["type"] for o in options if isinstance(o.get("type"), str) and o["type"] != "null"]
    kinds += [repr(o["const"]) for o in options if "const" in o]
    return " or ".join(dict.fromkeys(kinds)) or "valid"


def _hint(err: dict[str, Any], prop: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "Pass this required argument (see the tool's input schema)."
    if kind == "literal_error" or "enum" in prop:
        values = prop.get("enum") or ctx.get("expected")
        return f"Use one of: {', '.join(map(str, values))}." if isinstance(values, list) else f"Use {values}."
    if kind.startswith(("greater_than", "less_than", "too_", "string_too_")):
        return f"Pass a value in {_range(prop)}." if _range(prop) else "Pass a value in the allowed range."
    expected = _expected(prop)
    bounds = f" in {_range(prop)}" if _range(prop) else ""
    article = "an" if expected[:1] in "aeiou" else "a"
    return f"Pass {article} {expected} value{bounds}."


def coded_validation_error(exc: ValidationError, schema: dict[str, Any] | None = None) -> ConfigError:
    """A pydantic ValidationError of tool arguments as `[invalid_argument] ... (field x) Hint: ...`.

    `schema` is the full (pydantic) input schema, for ranges and allowed values. The first error
    is explained; other fields that failed are named."""
    errors = exc.errors(include_url=False, include_context=True)
    err = errors[0]
    loc = err.get("loc") or ("arguments",)
    field = str(loc[0])
    where = field + "".join(f"[{p}]" for p in loc[1:] if isinstance(p, int))
    schema = schema or {}
    prop = _inline(schema, schema.get("$defs", {})).get("properties", {}).get(field, {})
    value = json.dumps(err.get("input"), default=str)
    value = value if len(value) <= 60 else value[:57] + "..."
    if err.get("type") == "missing":
        message = "missing required argument"
    elif err.get("type") == "literal_error":
        message = f"unknown value {value}"
    else:
        message = f"{err.get('msg', 'invalid value')} (got {value}{' at ' + where if where != field else ''})"
    hint = _hint(err, prop)
    others = sorted({str((e.get("loc") or ("?",))[0]) for e in errors[1:]} - {field})
    if others:
        hint += f" Also invalid: {', '.join(others)}."
    return ConfigError(message, field=field, hint=hint)


def compact_text(result: CallToolResult) -> CallToolResult:
    """Replace the SDK's indented JSON text with compact JSON of the structured content."""
    if result.structured_content is None or result.is_error:
        return result
    text = json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False, default=str)
    return result.model_copy(update={"content": [TextContent(type="text", text=text)]})


class CodedToolError(ToolError):
    """A GraphtuneError (or a pydantic error inside a tool) already rendered `[code] message ...`."""


def validate_arguments(fn: Callable[..., Any], arguments: dict[str, Any]) -> dict[str, Any]:
    """Validate `arguments` for tool function `fn` (services already bound) exactly as the MCP
    server does, raising the coded ConfigError; the CLI uses this so both fail alike."""
    from mcp.server.mcpserver.utilities.func_metadata import func_metadata

    meta = func_metadata(fn)
    try:
        return meta.validate_arguments(arguments)
    except ValidationError as exc:
        raise coded_validation_error(exc, meta.arg_model.model_json_schema()) from exc


class LeanTool(Tool):
    """A registered tool whose argument errors are coded and whose text reply is compact JSON."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        try:
            result = await super().run(arguments, context, convert_result=convert_result)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):  # only argument validation raises it this way
                coded = coded_validation_error(exc.__cause__, self.fn_metadata.arg_model.model_json_schema())
                raise ToolError(str(coded)) from exc.__cause__
            if isinstance(exc.__cause__, CodedToolError):  # `[code] ...` without the SDK's "Error executing tool"
                raise ToolError(str(exc.__cause__)) from exc.__cause__
            raise
        return compact_text(result) if isinstance(result, CallToolResult) else result


def lean_tool(fn: Callable[..., Any], *, name: str, description: str, annotations: Any) -> LeanTool:
    """Build the SDK's Tool from `fn`, then trim its schemas (see the module docstring)."""
    tool = LeanTool.from_function(fn, name=name, description=description, annotations=annotations)
    tool.parameters = compact_input_schema(tool.parameters)
    if tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = compact_output_schema(tool.fn_metadata.output_schema)
    return tool
