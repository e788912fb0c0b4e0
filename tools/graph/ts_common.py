"""Shared machinery of the tree-sitter parsers (TypeScript/JavaScript, Go, Java, Rust).

Each language module walks the declarations of one syntax tree and calls `FileBuilder` to add
classes, callables and parameters; the result is the same `FileGraph` the Python parser
produces, so the store code, the resolver and the datasets need no language branches.

Why calls are collected with a tree-sitter query: a Python-level walk over every node costs
several times the (C) parse itself; a query runs in C and the per-callable share is then
found by binary search over byte offsets, as the Python parser does with its `_BodyIndex`.
tree-sitter is imported here only, and this module only when a non-Python file is parsed,
so the server starts without it.
"""

from __future__ import annotations

import bisect
import re
from functools import cache
from typing import Any

from graphtune.tools.graph.language_parser import LanguageParser
from graphtune.tools.graph.python_parser import FileGraph, sha_of

_GENERIC = re.compile(r"<.*>", re.DOTALL)
_STARS = re.compile(r"^[ \t]*\*?[ \t]?|[ \t]+$", re.MULTILINE)  # leading ` * ` of comment lines, trailing blanks


@cache
def grammar(name: str) -> Any:
    """The tree-sitter Language for a grammar name (its parser class's `grammars`; imported on
    first use, then cached)."""
    import importlib

    import tree_sitter

    module, function = LanguageParser.grammar_spec(name)
    return tree_sitter.Language(getattr(importlib.import_module(module), function)())


@cache
def parser_for(name: str) -> Any:
    import tree_sitter

    return tree_sitter.Parser(grammar(name))


@cache
def query(name: str, source: str) -> Any:
    import tree_sitter

    return tree_sitter.Query(grammar(name), source)


def captures(name: str, source: str, node: Any) -> dict[str, list[Any]]:
    import tree_sitter

    return tree_sitter.QueryCursor(query(name, source)).captures(node)


MAX_GRAMMAR_GAP_SHARE = 0.25


def parse_tree(grammar_name: str, data: bytes) -> tuple[Any, str | None]:
    """Parse bytes: (root node, None) for clean source, (root node, note) when the grammar could not read a few
    regions (ERROR / MISSING nodes) covering at most MAX_GRAMMAR_GAP_SHARE of the bytes.

    Why keep such files: tree-sitter recovers around what its grammar lacks, and the published
    grammars trail their languages (tree-sitter-typescript 0.23 reads neither `in out` variance nor
    newline-separated call signatures: half the files of the `effect` library). Refusing them lost
    every definition of those files; kept, only the definitions inside the skipped regions are
    missing, and the ingest report lists each such file with its note. A file mostly unreadable
    raises ValueError and is reported as failed, like a Python SyntaxError."""
    tree = parser_for(grammar_name).parse(data)
    root = tree.root_node
    if not root.has_error:
        return root, None
    regions = _error_regions(root)
    skipped = sum(node.end_byte - node.start_byte for node in regions)
    line = regions[0].start_point[0] + 1 if regions else 0
    if not regions or skipped > MAX_GRAMMAR_GAP_SHARE * max(len(data), 1):
        raise ValueError(f"syntax error near line {line} ({grammar_name} grammar)")
    return root, (f"{len(regions)} region(s) the {grammar_name} grammar could not read were skipped, the first "
                  f"near line {line} ({skipped} of {len(data)} bytes); definitions inside them are missing")


def _error_regions(root: Any) -> list[Any]:
    """The outermost ERROR and MISSING nodes, in source order."""
    found, stack = [], [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            found.append(node)
        else:
            stack.extend(child for child in reversed(node.children) if child.has_error or child.is_missing)
    return found


def strip_generics(text: str) -> str:
    """`Base<T>` -> `Base`, `*pkg.T[K]` -> `pkg.T`: bases and receivers name the type only."""
    text = _GENERIC.sub("", text).strip().lstrip("*&").strip()
    text = re.sub(r"^(mut|dyn|impl)\s+", "", text)
    return text.split("[", 1)[0].strip()


def clean_block_doc(text: str) -> str:
    """`/** ... */` (JSDoc, Javadoc) -> its text without the comment markers; `@param` and
    `@returns` lines stay, as a Python docstring's Args/Returns sections do."""
    body = text[3:-2] if text.startswith("/**") else text
    return "\n".join(map(_clean_doc_line, body.split("\n"))).strip()


def _clean_doc_line(line: str) -> str:
    """One comment line without its leading `[ \t]*\*?[ \t]?` and trailing blanks, with str
    methods: the same text as the MULTILINE regex `^[ \t]*\*?[ \t]?|[ \t]+$` (kept in _STARS
    for reference, tested equal), ~5x faster on Javadoc, which runs for every documented member."""
    line = line.lstrip(" \t")
    if line[:1] == "*":
        line = line[1:]
        if line[:1] in (" ", "\t"):
            line = line[1:]
    return line.rstrip(" \t")


def clean_line_doc(lines: list[str], marker: str) -> str:
    """Consecutive `//` / `///` / `//!` comment lines -> their text."""
    return "\n".join(line[len(marker):].removeprefix(" ").rstrip() if line.startswith(marker) else line
                     for line in lines).strip()


class FileBuilder:
    """Accumulates one file's rows in the Python parser's shapes (see python_parser.FileGraph)."""

    def __init__(self, path: str, module_name: str, data: bytes, language: str, call_query: tuple[str, str]) -> None:
        self.data = data
        self.ascii = data.decode("ascii") if data.isascii() else None
        self.graph = FileGraph(path=path, module_name=module_name, sha=sha_of(data),
                               lines=data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1))
        self.graph.language = language
        self.graph.defines = []
        self.call_query = call_query  # (grammar name, query with @call captures)
        self.calls: list[tuple[int, str]] = []
        self.call_pos: list[int] = []

    def text(self, node: Any) -> str:
        if node is None:
            return ""
        if self.ascii is not None:  # byte offsets are str offsets: slice, no decode per node
            return self.ascii[node.start_byte:node.end_byte]
        return self.data[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def index_calls(self, root: Any, raw_name: Any) -> None:
        """Every call in the file (one C query), as (start byte, raw callee name) sorted by position."""
        grammar_name, source = self.call_query
        found = []
        for node in captures(grammar_name, source, root).get("call", []):
            name = raw_name(self, node)
            if name:
                found.append((node.start_byte, name))
        found.sort()
        self.calls, self.call_pos = found, [pos for pos, _ in found]

    def calls_in(self, body: Any) -> set[str]:
        if body is None:
            return set()
        lo = bisect.bisect_left(self.call_pos, body.start_byte)
        hi = bisect.bisect_right(self.call_pos, body.end_byte)
        return {name for _, name in self.calls[lo:hi]}

    def add_class(self, node: Any, qn: str, name: str, kind: str, bases: list[str], doc: str,
                  top_level: bool = True) -> None:
        self.graph.classes.append({
            "qualified_name": qn, "name": name, "file_path": self.graph.path, "docstring": doc,
            "base_classes": bases, "decorators": [], "kind": kind, "start_line": node.start_point[0] + 1,
            "end_line": node.end_point[0] + 1, "source": self.text(node)})
        self.graph.inherits += [(qn, base) for base in bases]
        if top_level:
            self.graph.defines.append(qn)

    def add_callable(self, node: Any, qn: str, name: str, *, class_qn: str | None, params: list[dict[str, Any]],
                     signature: str, return_type: str | None, doc: str, body: Any, is_async: bool = False,
                     self_names: tuple[str, ...] = ()) -> None:
        """A function (class_qn None) or method; `self_names` are receiver names whose calls
        (`t.Close()` in Go) mean `self.Close()`."""
        for order, param in enumerate(params):
            param.update(order=order, owner=qn, id=f"{qn}({param['name']}")
        calls = self.calls_in(body)
        if self_names:
            calls = {_as_self(c, self_names) for c in calls}
        row = {"qualified_name": qn, "name": name, "file_path": self.graph.path, "docstring": doc,
               "signature": " ".join(signature.split()), "parameters": [param_text(p) for p in params],
               "return_type": return_type or None, "is_async": is_async, "decorators": [],
               "start_line": node.start_point[0] + 1, "end_line": node.end_point[0] + 1, "source": self.text(node)}
        if class_qn:
            row["class_name"] = class_qn
            self.graph.methods.append(row)
        else:
            self.graph.functions.append(row)
        self.graph.parameters += params
        self.graph.calls += [(qn, call, class_qn) for call in sorted(calls)]

    def finish(self) -> FileGraph:
        """Last definition of a name wins (overloads, getter/setter pairs), as in the Python parser."""
        g = self.graph
        for store in ("classes", "functions", "methods"):
            setattr(g, store, list({row["qualified_name"]: row for row in getattr(g, store)}.values()))
        keep = {r["qualified_name"] for r in g.functions + g.methods}
        g.parameters = list({p["id"]: p for p in g.parameters if p["owner"] in keep}.values())
        g.defines = list(dict.fromkeys(g.defines))
        local = {c["qualified_name"] for c in g.classes}
        g.foreign_bases = sorted({(qn, base) for qn, base in g.foreign_bases if qn not in local})
        return g


def param(name: str, type_: str | None = None, default: str | None = None, kind: str = "positional") -> dict[str, Any]:
    """A parameter row. A destructuring pattern's name (`{\n  a,\n  b\n}` in TypeScript, `(a,\n b)` in Rust)
    has its whitespace collapsed: the name is part of the parameter's id, and an id must stay on one line."""
    if not name.isidentifier():
        name = " ".join(name.split())
    return {"name": name, "type": type_ or None, "default": default or None, "kind": kind}


def param_text(p: dict[str, Any]) -> str:
    """`name: type = default` in every language (what datasets parse back), `...rest` for variadics."""
    text = ("..." if p["kind"] == "var_positional" else "") + p["name"]
    if p["type"]:
        text += f": {' '.join(p['type'].split())}"
    if p["default"] is not None:
        text += f" = {' '.join(p['default'].split())}"
    return text


def _as_self(call: str, names: tuple[str, ...]) -> str:
    head, dot, tail = call.partition(".")
    return f"self.{tail}" if dot and head in names else call


def doc_before(builder: FileBuilder, node: Any, block_prefix: str = "/**") -> str:
    """The `/** ... */` comment right before `node` (JSDoc, Javadoc), skipping annotations."""
    prev = node.prev_sibling
    while prev is not None and prev.type in ("decorator", "marker_annotation", "annotation"):
        prev = prev.prev_sibling
    if prev is None or "comment" not in prev.type:
        return ""
    text = builder.text(prev)
    if not text.startswith(block_prefix) or node.start_point[0] - prev.end_point[0] > 1:
        return ""
    return clean_block_doc(text)


def line_docs_before(builder: FileBuilder, node: Any, marker: str, skip: tuple[str, ...] = ()) -> str:
    """Consecutive line comments starting with `marker` right above `node` (GoDoc `//`, rustdoc `///`)."""
    lines: list[str] = []
    prev, expected_row = node.prev_sibling, node.start_point[0] - 1
    while prev is not None and prev.type in skip:
        expected_row = prev.start_point[0] - 1
        prev = prev.prev_sibling
    while prev is not None and "comment" in prev.type:
        text = builder.text(prev).rstrip("\n")
        if not text.startswith(marker) or prev.end_point[0] < expected_row or (
                marker == "//" and text.startswith("///")):
            break
        lines.insert(0, text)
        expected_row = prev.start_point[0] - 1
        prev = prev.prev_sibling
    return clean_line_doc(lines, marker)
