"""Go files -> FileGraph.

What counts (the independent count in tests mirrors it):
- Class: every top-level named type (`type X struct/interface/...`; aliases `type A = B` are
  not types of their own), kind struct/interface/type.
- Function: every top-level `func`. Method: every `func (r R) M()` (class: the receiver's type,
  which may live in another file of the package) and every method of an interface type.
- Bases (INHERITS): embedded struct fields and embedded interfaces.
- Calls: `f()`, `pkg.F()`, `recv.M()` (as `self.M`, the receiver's own method).
- Files `go build` leaves out on linux/amd64 (`x_windows.go`, `//go:build js`) are stored
  without definitions: they repeat the names of the files that are built.
- Module: the package's import path (go.mod's `module` + folder), so `import "m/sub"` and
  `sub.F()` resolve to `m/sub.F`; GoDoc comments (`//` lines right above) are docstrings.
"""

from __future__ import annotations

import re
from typing import Any

from graphtune.tools.graph.language_parser import LanguageParser, nearest
from graphtune.tools.graph.python_parser import FileGraph
from graphtune.tools.graph.ts_common import (
    FileBuilder,
    line_docs_before,
    param,
    parse_tree,
    strip_generics,
)

CALLS = "(call_expression) @call"
KINDS = {"struct_type": "struct", "interface_type": "interface"}
GOOS = {"aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl", "netbsd",
        "openbsd", "plan9", "solaris", "wasip1", "windows", "zos"}
GOARCH = {"386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "ppc64", "ppc64le",
          "riscv64", "s390x", "sparc64", "wasm"}
TARGET = {"linux", "amd64", "unix", "gc", "cgo"}  # the one build a package's files are read for
_BUILD = re.compile(rb"^//go:build (.+)$", re.MULTILINE)
_OLD_BUILD = re.compile(rb"^// \+build (.+)$", re.MULTILINE)


def excluded(path: str, data: bytes) -> str | None:
    """Why `go build` on linux/amd64 would leave the file out (`_windows.go`, `//go:build js`),
    or None. Such files repeat names of the included ones (one per platform): reading them
    would put two definitions under one qualified name."""
    parts = path.rsplit("/", 1)[-1].removesuffix(".go").removesuffix("_test").split("_")[1:]
    for tag in parts[-2:]:
        if (tag in GOOS or tag in GOARCH) and tag not in TARGET:
            return f"file name targets {tag}"
    header = data[: data.find(b"\npackage ") + 1] if b"\npackage " in data else data[:2000]
    match = _BUILD.search(header)
    if match:
        expr = match.group(1).decode("ascii", "replace")
        if not _satisfied(expr):
            return f"//go:build {expr.strip()}"
        return None
    for line in _OLD_BUILD.findall(header):  # pre-1.17 `// +build a,b c`: lines AND, spaces OR, commas AND
        expr = " || ".join("(" + " && ".join(option.split(",")) + ")" for option in line.decode("ascii", "replace").split())
        if not _satisfied(expr):
            return f"// +build {line.decode('ascii', 'replace').strip()}"
    return None


def _satisfied(expr: str) -> bool:
    tokens = re.findall(r"&&|\|\||!|\(|\)|[A-Za-z0-9_.]+", expr)
    words = {"&&": " and ", "||": " or ", "!": " not ", "(": "(", ")": ")"}
    text = "".join(words.get(t, " True " if t in TARGET or t.startswith("go1.") else " False ") for t in tokens)
    try:
        return bool(eval(text, {"__builtins__": {}}))
    except SyntaxError:
        return True


def parse(path: str, module: str, data: bytes, language: str = "go") -> FileGraph:
    b = FileBuilder(path, module, data, language, ("go", CALLS))
    reason = excluded(path, data)
    if reason:
        b.graph.description = f"Not part of the linux/amd64 build ({reason}); its definitions are not read."
        return b.finish()
    root, b.graph.parse_gap = parse_tree("go", data)
    b.index_calls(root, _raw_call)
    for node in root.named_children:
        if node.type == "package_clause":
            b.graph.description = line_docs_before(b, node, "//").split("\n\n")[0].replace("\n", " ")
        elif node.type == "import_declaration":
            _add_imports(b, node)
        elif node.type == "type_declaration":
            for spec in node.named_children:
                if spec.type == "type_spec":
                    _add_type(b, spec, node)
        elif node.type == "function_declaration":
            _add_func(b, node, None, ())
        elif node.type == "method_declaration":
            receiver = node.child_by_field_name("receiver")
            decl = next((p for p in receiver.named_children if p.type == "parameter_declaration"), None) \
                if receiver is not None else None
            if decl is None or decl.child_by_field_name("type") is None:
                continue
            type_name = strip_generics(b.text(decl.child_by_field_name("type")))
            names = tuple(b.text(n) for n in decl.children_by_field_name("name"))
            _add_func(b, node, f"{module}.{type_name}", names)
    return b.finish()


def _add_type(b: FileBuilder, spec: Any, decl: Any) -> None:
    name = b.text(spec.child_by_field_name("name"))
    type_node = spec.child_by_field_name("type")
    qn = f"{b.graph.module_name}.{name}"
    kind = KINDS.get(type_node.type, "type") if type_node is not None else "type"
    doc_node = decl if len([s for s in decl.named_children if s.type == "type_spec"]) == 1 else spec
    b.add_class(decl if doc_node is decl else spec, qn, name, kind, _embeds(b, type_node), line_docs_before(b, doc_node, "//"))
    if kind == "interface":
        for member in type_node.named_children:
            if member.type in ("method_elem", "method_spec"):
                _add_func(b, member, qn, ())


def _embeds(b: FileBuilder, type_node: Any) -> list[str]:
    if type_node is None:
        return []
    out = []
    if type_node.type == "struct_type":
        fields = next((c for c in type_node.named_children if c.type == "field_declaration_list"), None)
        for field in fields.named_children if fields is not None else ():
            if field.type == "field_declaration" and field.child_by_field_name("name") is None:
                out.append(strip_generics(b.text(field.child_by_field_name("type"))))
    elif type_node.type == "interface_type":
        for elem in type_node.named_children:
            kids = elem.named_children
            if elem.type in ("type_elem", "constraint_elem") and len(kids) == 1 and \
                    kids[0].type in ("type_identifier", "qualified_type", "generic_type"):
                out.append(strip_generics(b.text(kids[0])))
    return [name for name in out if name]


def _add_func(b: FileBuilder, node: Any, class_qn: str | None, receiver: tuple[str, ...]) -> None:
    name = b.text(node.child_by_field_name("name"))
    body = node.child_by_field_name("body")
    result = node.child_by_field_name("result")
    scope = class_qn or b.graph.module_name
    signature = b.text(node)[: body.start_byte - node.start_byte] if body is not None else b.text(node)
    b.add_callable(node, f"{scope}.{name}", name, class_qn=class_qn, params=_params(b, node),
                   signature=signature, return_type=b.text(result) if result is not None else None,
                   doc=line_docs_before(b, node, "//"), body=body, self_names=receiver)


def _params(b: FileBuilder, node: Any) -> list[dict[str, Any]]:
    plist = node.child_by_field_name("parameters")
    out: list[dict[str, Any]] = []
    for decl in plist.named_children if plist is not None else ():
        if decl.type not in ("parameter_declaration", "variadic_parameter_declaration"):
            continue
        kind = "var_positional" if decl.type == "variadic_parameter_declaration" else "positional"
        type_ = b.text(decl.child_by_field_name("type"))
        names = [b.text(n) for n in decl.children_by_field_name("name")] or [""]
        for name in names:
            out.append(param(name if name not in ("", "_") else f"_{len(out)}", type_, None, kind))
    return out


def _raw_call(b: FileBuilder, node: Any) -> str | None:
    fn = node.child_by_field_name("function")
    parts = []
    while fn is not None and fn.type == "selector_expression":
        parts.append(b.text(fn.child_by_field_name("field")))
        fn = fn.child_by_field_name("operand")
    if fn is None or fn.type != "identifier":
        return None
    parts.append(b.text(fn))
    return ".".join(reversed(parts))


def _add_imports(b: FileBuilder, node: Any) -> None:
    specs = [n for c in node.named_children for n in ([c] if c.type == "import_spec" else c.named_children)]
    for spec in specs:
        if spec.type != "import_spec":
            continue
        path = b.text(spec.child_by_field_name("path")).strip('"`')
        b.graph.imports.append(path)
        alias = spec.child_by_field_name("name")
        local = b.text(alias) if alias is not None else path.rsplit("/", 1)[-1]
        if local not in ("_", "."):
            b.graph.aliases[local] = path


class GoParser(LanguageParser):
    name = "go"
    suffixes = (".go",)
    display = "Go"
    fence = "go"
    unit = "package"
    grammars = {"go": ("tree_sitter_go", "language")}
    calls = CALLS
    marker = "go.mod"

    def read_marker(self, path: str, rel_dir: str) -> str:
        return _go_module(path) or rel_dir

    def module_name(self, rel: str, root_name: str, marked: dict[str, str]) -> str:
        folder = rel.rpartition("/")[0]
        return _go_package(folder, marked) or folder or root_name

    def parse(self, path: str, module_name: str, data: bytes, *, is_package: bool = False) -> FileGraph:
        return parse(path, module_name, data, self.name)


def _go_package(folder: str, go_modules: dict[str, str]) -> str | None:
    """`m/sub` for folder `x/sub` under the go.mod of `x` whose module is `m` (nearest go.mod wins)."""
    probe = nearest(folder, go_modules)
    if probe is None:
        return None
    rest = folder[len(probe):].lstrip("/") if probe != "." else folder
    return f"{go_modules[probe]}/{rest}" if rest else go_modules[probe]


def _go_module(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("module "):
                    return line.split()[1].strip('"')
    except OSError:
        return None
    return None
