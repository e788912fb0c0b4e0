"""Parse one Python file with `ast` into graph rows (files, classes, functions, methods,
parameters, and unresolved edges). Pure and picklable: runs in parallel worker processes.

What counts (and what the tests' independent `ast` count mirrors):
- Class: every `class` at module level or nested in a class body, also inside module-level
  `if`/`try`/`with` blocks. Classes defined inside functions are local and skipped.
- Function: every module-level `def`/`async def` (same block rule). Nested functions are skipped.
- Method: every `def` directly in a class body.
- A name defined twice in the same scope keeps the last definition, as Python does.
"""

from __future__ import annotations

import ast
import bisect
import hashlib
from dataclasses import dataclass, field
from typing import Any

from graphtune.tools.graph.body_index import Pos, index_module
from graphtune.tools.graph.language_parser import LanguageParser
from graphtune.tools.graph.patterns import (
    detect_class_patterns,
    detect_function_patterns,
)

BLOCKS = (ast.If, ast.Try, ast.With, ast.AsyncWith)
FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
if hasattr(ast, "TryStar"):
    BLOCKS = (*BLOCKS, ast.TryStar)


@dataclass
class FileGraph:
    """Everything one file contributes; edges hold raw names until the ingest resolves them."""

    path: str
    module_name: str
    sha: str
    lines: int
    description: str = ""
    classes: list[dict[str, Any]] = field(default_factory=list)
    functions: list[dict[str, Any]] = field(default_factory=list)
    methods: list[dict[str, Any]] = field(default_factory=list)
    parameters: list[dict[str, Any]] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)  # absolute module names
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> qualified target
    inherits: list[tuple[str, str]] = field(default_factory=list)  # (class qn, raw base expression)
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)  # (caller qn, raw callee, class qn)
    patterns: list[tuple[str, str, str]] = field(default_factory=list)  # (owner qn, owner label, pattern name)
    codebase: str = ""  # the code base the file belongs to (prefix of every node's uid)
    language: str = "python"
    defines: list[str] | None = None  # classes the file DEFINES; None: the top-level ones by qualified-name depth
    foreign_bases: list[tuple[str, str]] = field(default_factory=list)  # (class qn, raw base) for classes of
    # other files: Rust `impl Trait for T` and the like, resolved with the code base's derived edges
    parse_gap: str | None = None  # regions a tree-sitter grammar could not read (ts_common.parse_tree)


def sha_of(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""


def _unparse(node: ast.AST | None) -> str | None:
    if node is None:
        return None
    try:
        return ast.unparse(node)
    except Exception:  # unparse of exotic nodes must not fail the file
        return None


def _params(args: ast.arguments, owner: str) -> list[dict[str, Any]]:
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    rows = []
    items: list[tuple[ast.arg, ast.expr | None, str]] = [
        (a, d, "positional") for a, d in zip(positional, defaults, strict=True)]
    if args.vararg:
        items.append((args.vararg, None, "var_positional"))
    items += [(a, d, "keyword_only") for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg:
        items.append((args.kwarg, None, "var_keyword"))
    for order, (arg, default, kind) in enumerate(items):
        rows.append({"id": f"{owner}({arg.arg}", "name": arg.arg, "type": _unparse(arg.annotation),
                     "default": _unparse(default), "order": order, "kind": kind, "owner": owner})
    return rows


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {_unparse(node.returns)}" if node.returns is not None else ""
    return f"{prefix} {node.name}({_unparse(node.args) or ''}){returns}"


class _FileParser:
    def __init__(self, path: str, module_name: str, source: str, is_package: bool) -> None:
        self.lines = source.splitlines()
        self.graph = FileGraph(path=path, module_name=module_name, sha="", lines=len(self.lines))
        self.package = module_name if is_package else module_name.rpartition(".")[0]

    def segment(self, node: ast.AST) -> str:
        start, end = node.lineno - 1, node.end_lineno or node.lineno  # type: ignore[attr-defined]
        decorators = getattr(node, "decorator_list", None)
        if decorators:
            start = min(start, decorators[0].lineno - 1)
        return "\n".join(self.lines[start:end])

    def parse_module(self, tree: ast.Module) -> None:
        self.index = _BodyIndex(tree)
        self.graph.description = _first_line(ast.get_docstring(tree))
        self.walk_block(tree.body, self.graph.module_name, None)
        for store in ("classes", "functions", "methods"):
            rows = getattr(self.graph, store)
            unique = {row["qualified_name"]: row for row in rows}  # last definition wins
            setattr(self.graph, store, list(unique.values()))
        keep = {r["qualified_name"] for r in self.graph.functions + self.graph.methods}
        self.graph.parameters = list({p["id"]: p for p in self.graph.parameters if p["owner"] in keep}.values())

    def walk_block(self, body: list[ast.stmt], scope: str, class_qn: str | None) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                self.add_class(node, scope)
            elif isinstance(node, FUNCS):
                self.add_function(node, scope, class_qn)
            elif isinstance(node, (ast.Import, ast.ImportFrom)) and class_qn is None:
                self.add_import(node)
            elif isinstance(node, BLOCKS):
                for sub in ("body", "orelse", "finalbody"):
                    self.walk_block(getattr(node, sub, []) or [], scope, class_qn)
                for handler in getattr(node, "handlers", []) or []:
                    self.walk_block(handler.body, scope, class_qn)

    def add_import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.graph.imports += _import_targets(node, self.package, self.graph.aliases)

    def add_class(self, node: ast.ClassDef, scope: str) -> None:
        qn = f"{scope}.{node.name}"
        bases = [b for b in (_unparse(base) for base in node.bases) if b]
        decorators = [d for d in (_unparse(dec) for dec in node.decorator_list) if d]
        self.graph.classes.append({
            "qualified_name": qn, "name": node.name, "file_path": self.graph.path,
            "docstring": ast.get_docstring(node) or "", "base_classes": bases, "decorators": decorators,
            "start_line": node.lineno, "end_line": node.end_lineno, "source": self.segment(node)})
        self.graph.inherits += [(qn, base) for base in bases]
        self.graph.patterns += [(qn, "Class", p) for p in detect_class_patterns(node, bases, decorators)]
        self.walk_block(node.body, qn, qn)

    def add_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: str, class_qn: str | None) -> None:
        qn = f"{scope}.{node.name}"
        decorators = [d for d in (_unparse(dec) for dec in node.decorator_list) if d]
        params = _params(node.args, qn)
        calls, local_aliases, generator = self.index.scan(node, self.package)
        if local_aliases:
            calls = {_apply_alias(name, local_aliases) for name in calls}
        row = {"qualified_name": qn, "name": node.name, "file_path": self.graph.path,
               "docstring": ast.get_docstring(node) or "", "signature": _signature(node),
               "parameters": [_param_text(p) for p in params], "return_type": _unparse(node.returns),
               "is_async": isinstance(node, ast.AsyncFunctionDef), "decorators": decorators,
               "start_line": node.lineno, "end_line": node.end_lineno, "source": self.segment(node)}
        label = "Method" if class_qn else "Function"
        if class_qn:
            row["class_name"] = class_qn
            self.graph.methods.append(row)
        else:
            self.graph.functions.append(row)
        self.graph.parameters += params
        self.graph.calls += [(qn, name, class_qn) for name in sorted(calls)]
        self.graph.patterns += [(qn, label, p) for p in detect_function_patterns(node, decorators, generator)]


class _BodyIndex:
    """One walk over the whole module (body_index.index_module), recording calls, yields, imports
    and nested definitions by source position; each function then takes what lies inside its body.

    A walk per function plus per-node bookkeeping cost ~1.8x a bare `ast.parse` + `ast.walk`;
    one walk and binary searches cost little more than the walk."""

    def __init__(self, tree: ast.Module) -> None:
        calls, yields, imports, defs = index_module(tree)
        self.calls, self.call_pos = calls, [pos for pos, _ in calls]
        self.imports, self.import_pos = imports, [pos for pos, _ in imports]
        self.yields, self.defs, self.def_starts = yields, defs, [start for start, _ in defs]

    @staticmethod
    def _span(positions: list[Pos], start: Pos, end: Pos) -> tuple[int, int]:
        return bisect.bisect_left(positions, start), bisect.bisect_right(positions, end)

    def scan(self, fn: ast.FunctionDef | ast.AsyncFunctionDef, package: str) -> tuple[set[str], dict[str, str], bool]:
        """Raw call names, function-local import aliases, and whether `fn` itself yields."""
        start: Pos = (fn.body[0].lineno, fn.body[0].col_offset)  # the body only: not decorators or defaults
        end: Pos = (fn.end_lineno or fn.lineno, fn.end_col_offset or 0)
        lo, hi = self._span(self.call_pos, start, end)
        calls = {name for _, name in self.calls[lo:hi]}
        aliases: dict[str, str] = {}
        lo, hi = self._span(self.import_pos, start, end)
        for _, node in self.imports[lo:hi]:
            _import_targets(node, package, aliases)
        lo, hi = self._span(self.yields, start, end)
        generator = False
        if lo < hi:  # a yield in the body: the function's own, unless a nested definition holds it
            first, last = bisect.bisect_left(self.def_starts, start), bisect.bisect_right(self.def_starts, end)
            nested = self.defs[first:last]
            generator = any(not any(a <= y <= b for a, b in nested) for y in self.yields[lo:hi])
        return calls, aliases, generator


def _import_targets(node: ast.Import | ast.ImportFrom, package: str, aliases: dict[str, str]) -> list[str]:
    """Absolute module names an import statement imports; records local names in `aliases`."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            local = alias.asname or alias.name.split(".")[0]
            aliases[local] = alias.name if alias.asname else local
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = package.split(".") if package else []
        parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
        base = ".".join([*parts, *([node.module] if node.module else [])])
    targets = [base] if base else []
    for alias in node.names:
        if alias.name != "*":
            target = f"{base}.{alias.name}" if base else alias.name
            aliases[alias.asname or alias.name] = target
            targets.append(target)  # `from pkg import module` imports a module too
    return targets


def _apply_alias(name: str, aliases: dict[str, str]) -> str:
    head, dot, tail = name.partition(".")
    return aliases[head] + dot + tail if head in aliases else name


def _param_text(param: dict[str, Any]) -> str:
    star = {"var_positional": "*", "var_keyword": "**"}.get(param["kind"], "")
    text = star + param["name"]
    if param["type"]:
        text += f": {param['type']}"
    if param["default"] is not None:
        text += f" = {param['default']}"
    return text


def parse_file(path: str, module_name: str, data: bytes, *, is_package: bool = False, codebase: str = "") -> FileGraph:
    """Parse one file's bytes; raises SyntaxError/ValueError/RecursionError/UnicodeDecodeError on bad input."""
    source = data.decode("utf-8-sig") if not data.startswith(b"#") else _decode_with_cookie(data)
    tree = ast.parse(source, filename=path)
    parser = _FileParser(path, module_name, source, is_package)
    parser.parse_module(tree)
    parser.graph.sha = sha_of(data)
    parser.graph.codebase = codebase
    return parser.graph


def _decode_with_cookie(data: bytes) -> str:
    import io
    import tokenize

    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)


class PythonParser(LanguageParser):
    """Python, read with the standard library's `ast` (no tree-sitter grammar)."""

    name = "python"
    suffixes = (".py",)
    display = "Python"
    fence = "python"

    def module_name(self, rel: str, root_name: str, marked: dict[str, str]) -> str:
        parts = rel[:-3].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        return ".".join(parts) or "__init__"

    def parse(self, path: str, module_name: str, data: bytes, *, is_package: bool = False) -> FileGraph:
        return parse_file(path, module_name, data, is_package=is_package)
