"""Turn one parsed file into CSV text for LadybugDB's bulk `COPY FROM`.

Runs inside the parser processes, so formatting rows costs no time in the process that
writes the store, and only compact strings travel back between processes; the graph version's
own-aspect hashes of the file's entities are made here too (entity_hashes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphtune.tools.graph.csv_cells import converter
from graphtune.tools.graph.entity_hashes import OwnHashes, own_hashes, stored_records
from graphtune.tools.graph.python_parser import FileGraph
from graphtune.tools.graph.schema import JSON_LIST_PROPS, NODE_TABLES, uid

NODE_KEYS = ("CodeFile", "Class", "Function", "Method", "Parameter")
REL_KEYS = (("DEFINES", "CodeFile", "Class"), ("DEFINES", "CodeFile", "Function"), ("HAS_METHOD", "Class", "Method"),
            ("HAS_PARAMETER", "Function", "Parameter"), ("HAS_PARAMETER", "Method", "Parameter"),
            ("IMPLEMENTS_PATTERN", "Class", "Pattern"), ("IMPLEMENTS_PATTERN", "Function", "Pattern"),
            ("IMPLEMENTS_PATTERN", "Method", "Pattern"))


@dataclass
class PreparedFile:
    path: str
    lines: int
    counts: dict[str, int]
    patterns: list[tuple[str, str]]  # (pattern name, an example qualified name)
    chunks: dict[Any, str] = field(default_factory=dict)  # table or rel key -> CSV body (no header)
    names: list[str] = field(default_factory=list)  # qualified names of its classes, functions, methods
    own: OwnHashes = field(default_factory=dict)  # its entities' own-aspect hashes for the graph version
    parse_gap: str | None = None  # see python_parser.FileGraph

    @property
    def size(self) -> int:
        """Characters of CSV text it holds (what a write batch is bounded by)."""
        return sum(map(len, self.chunks.values()))


def node_rows(f: FileGraph) -> dict[str, Iterable[dict[str, Any]]]:
    calls: dict[str, list[str]] = {}
    for caller, raw, _cls in f.calls:
        calls.setdefault(caller, []).append(raw)
    cb = f.codebase

    def scoped(row: dict[str, Any], key: str, **extra: Any) -> dict[str, Any]:
        return {**row, **extra, "uid": uid(cb, row[key]), "codebase": cb}

    return {
        "CodeFile": [scoped({"path": f.path, "module_name": f.module_name, "description": f.description,
                             "language": f.language, "sha": f.sha, "lines": f.lines, "aliases": f.aliases,
                             "imports": sorted(set(f.imports)), "inherits": [f"{a} {b}" for a, b in f.foreign_bases]},
                            "path")],
        "Class": (scoped(r, "qualified_name", kind=r.get("kind", "class")) for r in f.classes),
        "Function": (scoped(r, "qualified_name", raw_calls=calls.get(r["qualified_name"], [])) for r in f.functions),
        "Method": (scoped(r, "qualified_name", raw_calls=calls.get(r["qualified_name"], [])) for r in f.methods),
        "Parameter": (scoped(p, "id", file_path=f.path) for p in f.parameters),
    }


def rel_pairs(f: FileGraph) -> dict[tuple[str, str, str], Iterable[tuple[str, str]]]:
    """Edges of one file as (from uid, to uid) pairs."""
    depth = f.module_name.count(".") + 1
    methods = {r["qualified_name"] for r in f.methods}
    local = {c["qualified_name"] for c in f.classes}  # a Go/Rust method's type may live in another file:
    # that HAS_METHOD edge is derived (embedded_writer.rebuild_derived_edges)
    defines = set(f.defines) if f.defines is not None else {
        c["qualified_name"] for c in f.classes if c["qualified_name"].count(".") == depth}
    cb = f.codebase

    def u(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(uid(cb, a), uid(cb, b)) for a, b in pairs]

    return {
        ("DEFINES", "CodeFile", "Class"): u((f.path, c["qualified_name"]) for c in f.classes
                                            if c["qualified_name"] in defines),
        ("DEFINES", "CodeFile", "Function"): u((f.path, r["qualified_name"]) for r in f.functions),
        ("HAS_METHOD", "Class", "Method"): u((r["class_name"], r["qualified_name"]) for r in f.methods
                                             if r["class_name"] in local),
        ("HAS_PARAMETER", "Function", "Parameter"): u((p["owner"], p["id"]) for p in f.parameters
                                                      if p["owner"] not in methods),
        ("HAS_PARAMETER", "Method", "Parameter"): u((p["owner"], p["id"]) for p in f.parameters
                                                    if p["owner"] in methods),
        ("IMPLEMENTS_PATTERN", "Class", "Pattern"): u((qn, n) for qn, lab, n in f.patterns if lab == "Class"),
        ("IMPLEMENTS_PATTERN", "Function", "Pattern"): u((qn, n) for qn, lab, n in f.patterns if lab == "Function"),
        ("IMPLEMENTS_PATTERN", "Method", "Pattern"): u((qn, n) for qn, lab, n in f.patterns if lab == "Method"),
    }


CONVERTERS = {table: converter([name for name, _ in NODE_TABLES[table]], JSON_LIST_PROPS) for table in NODE_TABLES}


def _quote(value: Any) -> str:
    text = value if value.__class__ is str else str(value)
    return text.replace('"', '""') if '"' in text else text


def to_csv(rows: Iterable[Iterable[Any]]) -> str:
    """Rows of plain values (edge uid pairs) as QUOTE_ALL CSV text (see csv_cells)."""
    return "".join(['"' + '","'.join(map(_quote, row)) + '"\n' for row in rows])


def node_csv(table: str, rows: Iterable[dict[str, Any]]) -> str:
    return "".join(map(CONVERTERS[table], rows))


def prepare(f: FileGraph) -> PreparedFile:
    chunks: dict[Any, str] = {table: node_csv(table, rows) for table, rows in node_rows(f).items()}
    chunks.update({key: to_csv(pairs) for key, pairs in rel_pairs(f).items()})
    examples = {}
    for qn, _label, name in f.patterns:
        examples.setdefault(name, qn)
    counts = {"classes": len(f.classes), "functions": len(f.functions), "methods": len(f.methods)}
    names = [r["qualified_name"] for rows in (f.classes, f.functions, f.methods) for r in rows]
    return PreparedFile(f.path, f.lines, counts, sorted(examples.items()), chunks, names, own_hashes(*stored_records(f)),
                        f.parse_gap)


def join_chunks(files: list[PreparedFile], key: Any) -> Iterator[str]:
    return (f.chunks[key] for f in files if f.chunks.get(key))
