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
short `Field(description=...)`: see graphtune.server.app.summary and graphtune.tools.tool_registry.

Argument validation errors from the SDK (pydantic) are rendered like every other error:
`[invalid_argument] <what was wrong> (field `x`) Hint: <how to fix>`.

SDK surface used: only the exported `mcp.server.mcpserver.tools.Tool` (`from_function`, `run`,
`parameters`) and its `fn_metadata` field (`arg_model`, `validate_arguments`, and the output
fields, which the SDK documents as read live). Nothing is imported from the SDK's unexported
`utilities.func_metadata` module. `LeanTool` still subclasses `Tool`: `MCPServer(tools=[...])` and
`add_tool` offer no hook around a call to re-code argument errors or compact the reply, and no
public way to keep output validation while publishing a generic output schema.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from graphtune.tools.validation import coded_validation_error, inline_refs
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, ValidationError


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
    schema = _strip_titles(inline_refs(schema, schema.get("$defs", {})))
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
    meta = Tool.from_function(fn, structured_output=False).fn_metadata
    try:
        return meta.validate_arguments(arguments)
    except ValidationError as exc:
        raise coded_validation_error(exc, meta.arg_model.model_json_schema()) from exc


def _refuse_unknown(tool: str, arguments: dict[str, Any], known: dict[str, Any]) -> None:
    """An argument the tool does not take is refused, not silently dropped (the SDK ignores extras):
    an agent that passes `lora_dropout` must learn it has no effect here (issue 22)."""
    from graphtune.tools.errors import ConfigError

    unknown = sorted(set(arguments) - set(known))
    if unknown:
        error = ConfigError(f"{tool} takes no parameter named {', '.join(repr(u) for u in unknown)}",
                            field=unknown[0], hint=(f"Leave it out; {tool} takes: {', '.join(known)}. Engine "
                            "settings not offered here are set by the preset (the CLI has flags for them)."
                            if known else f"Leave it out; {tool} takes no parameters."))
        raise ToolError(str(error))


class LeanTool(Tool):
    """A registered tool whose argument errors are coded and whose text reply is compact JSON."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        _refuse_unknown(self.name, arguments, self.parameters.get("properties", {}))
        try:
            result = await super().run(arguments, context, convert_result=convert_result)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError) and cause.title == self.fn_metadata.arg_model.__name__:
                coded = coded_validation_error(cause, self.fn_metadata.arg_model.model_json_schema())
                raise ToolError(str(coded)) from cause  # the caller's arguments: a coded invalid_argument
            if isinstance(exc.__cause__, CodedToolError):  # `[code] ...` without the SDK's "Error executing tool"
                raise ToolError(str(exc.__cause__)) from exc.__cause__
            raise
        return compact_text(result) if isinstance(result, CallToolResult) else result


def lean_tool(fn: Callable[..., Any], *, name: str, description: str, annotations: Any) -> LeanTool:
    """Build the SDK's Tool from `fn`, then trim its schemas (see the module docstring).

    A tool returning a pydantic model skips the SDK's derivation of the full output schema (about
    half of the app's build time at start-up, and thrown away here): its metadata is rebuilt with
    the generic schema and the same model, so results are validated against it as before."""
    returns = inspect.signature(fn).return_annotation
    structured = isinstance(returns, type) and issubclass(returns, BaseModel)
    tool = LeanTool.from_function(fn, name=name, description=description, annotations=annotations,
                                  **({"structured_output": False} if structured else {}))
    tool.parameters = compact_input_schema(tool.parameters)
    if structured:  # FuncMetadata's fields are read live (its docstring): set them, derive nothing
        tool.fn_metadata.output_schema = compact_output_schema({})
        tool.fn_metadata.output_model = returns
        tool.fn_metadata.wrap_output = False
    elif tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = compact_output_schema(tool.fn_metadata.output_schema)
    return tool
