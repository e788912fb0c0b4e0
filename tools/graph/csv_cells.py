"""Row dict -> one CSV line, per node table, quoted as `csv.writer(quoting=QUOTE_ALL)` writes it
(LadybugDB reads it with QUOTE='"', ESCAPE='"').

Why generated code: this runs for every node of every ingest (~1M cells for 0.5M lines of Python),
inside the parser processes. A loop over the table's columns paid, per cell, the loop itself, a
tuple unpack and a `dict.get` call; the function made here per table names each column once, in a
straight line, and formats the common cell (a string without `"`) with one class test. The rules
per cell are the ones the loop applied (tests/unit/graph/test_ingest_fast_paths.py compares the
output with the csv module's):
- a string, in a column that is not a JSON list: as is, `"` doubled;
- a JSON-list column, or a list/dict anywhere: its JSON text (`json.dumps`), `"` doubled; `[]` when empty;
- None: empty; True/False: `true`/`false`; anything else: `str()`, `"` doubled.
Hand formatting instead of the csv module: that one inspects every character of every field,
~15x slower than `str.replace` on long `source` fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_ASCII_STRING = json.encoder.encode_basestring_ascii  # what json.dumps (ensure_ascii=True) writes for a str


def json_text(value: Any) -> str:
    """`json.dumps(value)`; a list of plain strings (raw calls, parameters, bases: most JSON cells)
    is joined directly with the C string encoder json.dumps itself uses, the same text without the
    encoder's per-call setup (a Rust ingest formats ~5,000 such lists)."""
    if value.__class__ is list and all(item.__class__ is str for item in value):
        return "[" + ", ".join(map(_ASCII_STRING, value)) + "]"
    return json.dumps(value)


def json_cell(value: Any) -> str:
    """A JSON-list column's cell (any value: a stored string is JSON-encoded too)."""
    return json_text(value).replace('"', '""') if value else "[]"


def other_cell(value: Any) -> str:
    """A cell of a plain column whose value is not a string."""
    if isinstance(value, (list, dict)):
        return json_text(value).replace('"', '""') if value else "[]"
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value).replace('"', '""')


def converter(columns: list[str], json_columns: set[str] | frozenset[str]) -> Callable[[dict[str, Any]], str]:
    """The row -> CSV line function of a table with these columns (see the module docstring)."""
    lines = ["def convert(row):", "    get = row.get"]
    cells = []
    for i, column in enumerate(columns):
        lines.append(f"    v = get({column!r})")
        if column in json_columns:
            lines.append(f"    c{i} = json_cell(v)")
        else:
            lines.append(f"    c{i} = ((v.replace('\"', '\"\"') if '\"' in v else v) if v.__class__ is str "
                         f"else other_cell(v))")
        cells.append(f"{{c{i}}}")
    lines.append("    return f'\"" + '","'.join(cells) + "\"\\n'")
    namespace: dict[str, Any] = {"json_cell": json_cell, "other_cell": other_cell}
    exec("\n".join(lines), namespace)  # noqa: S102 (code built above from the schema's column names only)
    return namespace["convert"]
