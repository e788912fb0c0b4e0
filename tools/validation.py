"""Pydantic validation errors as graphtune's coded errors.

`coded_validation_error` renders a `ValidationError` of tool arguments or of a request model as
`[invalid_argument] <what was wrong> (field `x`) Hint: <how to fix>`: the MCP server, the CLI and
the request models (graphtune.tools.requests) all use it, so bad input reads the same everywhere.
"""

from __future__ import annotations

import json
from typing import Any

from graphtune.tools.errors import ConfigError
from pydantic import ValidationError

__all__ = ["coded_validation_error", "inline_refs"]


def inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """`node` with every `$ref` to `#/$defs/...` replaced by its definition."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = dict(defs[ref.split("/")[-1]])
            return inline_refs({**target, **{k: v for k, v in node.items() if k != "$ref"}}, defs)
        return {k: inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [inline_refs(v, defs) for v in node]
    return node


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
    prop = inline_refs(schema, schema.get("$defs", {})).get("properties", {}).get(field, {})
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
