"""The lean tool surface: compact JSON schemas and replies, and coded argument errors.

An agent pays for `tools/list` on every session, so what the SDK derives from each tool's
signature is trimmed once, when the app is built (see `create_app`):

- input schemas keep names, types, ranges, enums, non-null defaults and the short
  description; pydantic's titles go, `$defs` are inlined, and an optional parameter whose
  default is null is advertised by its type alone (leave it out to get the default; null is
  still accepted);
- output schemas are generic: the top-level keys with their JSON types (a job tool's is the
  shared job view: `job_id`, `kind`, `status` and the rest). `structuredContent` is returned
  and validated against the full pydantic model as before; README/docs describe the fields;
- the text content beside `structuredContent` is compact JSON (no indentation).

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

_JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object")


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


def _drop_null(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter defaulting to null: advertise its type alone, without the default."""
    if "default" not in prop or prop["default"] is not None:
        return prop
    prop = {k: v for k, v in prop.items() if k != "default"}
    options = [o for o in prop.get("anyOf", []) if o != {"type": "null"}]
    if "anyOf" in prop:
        rest = {k: v for k, v in prop.items() if k != "anyOf"}
        prop = {**options[0], **rest} if len(options) == 1 else {"anyOf": options, **rest}
    return prop


def compact_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Names, types, ranges, enums, real defaults and descriptions; nothing else."""
    schema = _strip_titles(_inline(schema, schema.get("$defs", {})))
    props = {name: _drop_null(prop) for name, prop in schema.get("properties", {}).items()}
    out: dict[str, Any] = {"type": "object", "properties": props}
    if schema.get("required"):
        out["required"] = schema["required"]
    return out


def _json_type(prop: dict[str, Any]) -> str | None:
    """The one JSON type a property always has, else None (nullable or a union)."""
    kind = prop.get("type")
    return kind if kind in _JSON_TYPES else None


# What every job tool returns (graphtune.tools.jobs.JobView): its keys, to keep the schema small.
JOB_VIEW_KEYS = ("job_id", "kind", "status", "progress", "eta_seconds", "created_at", "started_at", "finished_at",
                 "elapsed_seconds", "cancel_requested", "waiting_for", "wait_reason", "latest_metrics",
                 "recent_events", "result", "error", "params", "next_event_id")


def compact_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The top-level keys with their JSON types; nested objects stay open (`{"type": "object"}`)."""
    schema = _inline(schema, schema.get("$defs", {}))
    required = schema.get("required", [])
    if schema.get("title") == "JobView":  # shared by every job tool: one terse, generic schema
        return {"type": "object", "description": "Job view: " + ", ".join(JOB_VIEW_KEYS) + ".",
                "properties": {"job_id": {"type": "string"}, "status": {"type": "string"}},
                "required": ["job_id", "status"]}
    props = {}
    for name, prop in schema.get("properties", {}).items():
        kind = _json_type(prop) if name in required else None
        props[name] = {"type": kind} if kind else {}
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def _loc(err: dict[str, Any]) -> str:
    parts = [str(p) for p in err.get("loc", ()) if not isinstance(p, int) or True]
    return ".".join(parts) or "arguments"


def _hint(err: dict[str, Any], prop: dict[str, Any] | None) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "Pass this required argument."
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return "Remove it; see the tool's input schema for the accepted arguments."
    if kind in ("literal_error", "enum"):
        return f"Use one of {ctx.get('expected', 'the listed values')}."
    if kind.startswith(("greater_than", "less_than")) or kind in ("too_short", "too_long", "string_too_short",
                                                                  "string_too_long"):
        lo = (prop or {}).get("minimum", (prop or {}).get("minLength"))
        hi = (prop or {}).get("maximum", (prop or {}).get("maxLength"))
        if lo is not None or hi is not None:
            return f"Pass a value within {lo if lo is not None else '-inf'}..{hi if hi is not None else 'inf'}."
        return "Pass a value within the allowed range."
    expected = (prop or {}).get("type") or ", ".join(str(o.get("type", o.get("const"))) for o in
                                                    (prop or {}).get("anyOf", []) if isinstance(o, dict))
    return f"Pass a {expected} value." if expected else "See the tool's input schema."


def coded_validation_error(exc: ValidationError, schema: dict[str, Any] | None = None) -> ConfigError:
    """The first error of a pydantic ValidationError as `[invalid_argument] ... (field x) Hint: ...`."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    field = _loc(err)
    prop = (schema or {}).get("properties", {}).get(str(err.get("loc", ("",))[0]))
    value = err.get("input")
    shown = "" if err.get("type") == "missing" or isinstance(value, dict) else f" (got {json.dumps(value, default=str)[:60]})"
    message = f"`{field}`: {err.get('msg', 'invalid value')}{shown}"
    if len(errors) > 1:
        others = sorted({_loc(e) for e in errors[1:]} - {field})
        if others:
            message += f"; also invalid: {', '.join(others)}"
    return ConfigError(message + ".", field=field, hint=_hint(err, prop))


def compact_text(result: CallToolResult) -> CallToolResult:
    """Replace the SDK's indented JSON text with compact JSON of the structured content."""
    if result.structured_content is None or result.is_error:
        return result
    text = json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False, default=str)
    return result.model_copy(update={"content": [TextContent(type="text", text=text)]})


class LeanTool(Tool):
    """A registered tool whose argument errors are coded and whose text reply is compact JSON."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        try:
            result = await super().run(arguments, context, convert_result=convert_result)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):  # only argument validation raises it this way
                coded = coded_validation_error(exc.__cause__, self.parameters)
                raise ToolError(str(coded)) from exc.__cause__
            raise
        return compact_text(result) if isinstance(result, CallToolResult) else result


def lean_tool(fn: Callable[..., Any], *, name: str, description: str, annotations: Any) -> LeanTool:
    """Build the SDK's Tool from `fn`, then trim its schemas (see the module docstring)."""
    tool = LeanTool.from_function(fn, name=name, description=description, annotations=annotations)
    tool.parameters = compact_input_schema(tool.parameters)
    if tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = compact_output_schema(tool.fn_metadata.output_schema)
    return tool
