"""docs/tools.md's parameter tables are checked against the declarations they document (issue 20):
each tool's table lists its parameters in order, with the declared default and range, and marks the
CLI-only ones; the long-form description column is the docs' own."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[3] / "docs" / "tools.md"


def _tables() -> dict[str, list[list[str]]]:
    """tool name -> its parameter rows (cells stripped), from `## `tool`` sections."""
    tables: dict[str, list[list[str]]] = {}
    tool = None
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## `(\w+)`", line)
        if heading:
            tool = heading.group(1)
        elif tool and line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            tables.setdefault(tool, []).append(cells)
    return tables


def _bound(field: Any, *names: str) -> Any:
    return next((getattr(m, n) for m in field.metadata for n in names if getattr(m, n, None) is not None), None)


def _range(field: Any) -> str:
    """`lo..hi`, `lo..` or `..hi` (value bounds, or a string's length)."""
    lo, hi = _bound(field, "ge", "min_length"), _bound(field, "le", "max_length")
    return "" if lo is None and hi is None else f"{'' if lo is None else lo}..{'' if hi is None else hi}"


def _default(field: Any) -> str:
    return "required" if field.is_required() else json.dumps(field.default)


def _models() -> dict[str, Any]:
    """Every tool's declaration: its request model, or one built from its signature (graphtune.server.cli_args)."""
    from graphtune.server.cli_args import tool_request
    from graphtune.tools.tool_registry import tools

    out = {}
    for spec in tools():
        fn = spec.load()
        out[spec.name] = getattr(fn, "request_model", None) or tool_request(fn)
    return out


@pytest.mark.parametrize("tool", sorted(_models()))
def test_docs_table_matches_the_declaration(tool: str) -> None:
    model = _models()[tool]
    rows = _tables().get(tool, [])
    fields = model.public_fields()
    assert [r[0].strip("`") for r in rows] == list(fields), f"docs/tools.md `{tool}`: parameters or their order"
    for name, type_, default, range_, description in rows:
        field = fields[name.strip("`")]
        assert default.split(" (")[0] == _default(field), (tool, name, default)
        assert range_ == _range(field), (tool, name, range_)
        assert ("**CLI only**" in description) == (name.strip("`") in model.cli_only), (tool, name)
