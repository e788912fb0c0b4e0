"""Java files -> FileGraph.

What counts (the independent count in tests mirrors it):
- Class: every class, interface, enum, record and annotation type declared at the top level or
  nested in another type's body (qualified `pkg.Outer.Inner`); local and anonymous classes are not.
- Method: every method and constructor of such a type (a constructor is named like its class);
  overloads are one method (the last one's parameters), as a name is one method in the graph.
- Bases: `extends` and `implements`, type arguments dropped.
- Calls: `f()` and `this.f()` (as `self.f`), `Type.f()`, `obj.f()`, `new T()` (as `T.T`).
- Module: the `package` (files of one package share it); `import a.b.C` makes `C` name `a.b.C`.
Javadoc comments are docstrings. Java has no free functions.
"""

from __future__ import annotations

from typing import Any

from graphtune.tools.graph.language_parser import LanguageParser
from graphtune.tools.graph.python_parser import FileGraph
from graphtune.tools.graph.ts_common import (
    FileBuilder,
    doc_before,
    param,
    parse_tree,
    strip_generics,
)

CALLS = "(method_invocation) @call (object_creation_expression) @call"
KINDS = {"class_declaration": "class", "interface_declaration": "interface", "enum_declaration": "enum",
         "record_declaration": "record", "annotation_type_declaration": "annotation"}
METHODS = ("method_declaration", "constructor_declaration", "compact_constructor_declaration")


def parse(path: str, module: str, data: bytes, language: str = "java") -> FileGraph:
    root, gap = parse_tree("java", data)  # the builder needs the package read from the tree
    package = next((n for n in root.named_children if n.type == "package_declaration"), None)
    if package is not None:
        module = b_text(data, package.named_children[0]) if package.named_children else module
    b = FileBuilder(path, module, data, language, ("java", CALLS))
    b.graph.parse_gap = gap
    b.index_calls(root, _raw_call)
    for node in root.named_children:
        if node.type == "import_declaration":
            _add_import(b, node)
        elif node.type in KINDS:
            _add_type(b, node, module, top_level=True)
    return b.finish()


def b_text(data: bytes, node: Any) -> str:
    return data[node.start_byte:node.end_byte].decode("utf-8", "replace")


def _add_type(b: FileBuilder, node: Any, scope: str, top_level: bool) -> None:
    name = b.text(node.child_by_field_name("name"))
    qn = f"{scope}.{name}"
    b.add_class(node, qn, name, KINDS[node.type], _bases(b, node), doc_before(b, node), top_level=top_level)
    if node.type == "record_declaration":  # a record's components are its constructor's parameters
        _add_method(b, node, qn, name, node.child_by_field_name("body"))
    body = node.child_by_field_name("body")
    members = list(body.named_children) if body is not None else []
    for extra in [m for m in members if m.type == "enum_body_declarations"]:
        members += extra.named_children
    for member in members:
        if member.type in METHODS:
            method_name = name if member.type != "method_declaration" else b.text(member.child_by_field_name("name"))
            _add_method(b, member, qn, method_name, member.child_by_field_name("body"))
        elif member.type in KINDS:
            _add_type(b, member, qn, top_level=False)


def _bases(b: FileBuilder, node: Any) -> list[str]:
    out = []
    for field in ("superclass", "interfaces"):
        child = node.child_by_field_name(field)
        if child is not None:
            out += _type_list(b, child)
    out += [n for c in node.named_children if c.type == "extends_interfaces" for n in _type_list(b, c)]
    return out


def _type_list(b: FileBuilder, node: Any) -> list[str]:
    items = []
    for child in node.named_children:
        if child.type == "type_list":
            items += child.named_children
        else:
            items.append(child)
    return [strip_generics(b.text(i)) for i in items if i.type in ("type_identifier", "generic_type", "scoped_type_identifier")]


def _add_method(b: FileBuilder, node: Any, class_qn: str, name: str, body: Any) -> None:
    ret = node.child_by_field_name("type") if node.type == "method_declaration" else None
    text = b.text(node)
    signature = text[: body.start_byte - node.start_byte] if body is not None and node.type in METHODS else text
    if node.type == "record_declaration":
        params_node = node.child_by_field_name("parameters")
        signature = f"{name}{b.text(params_node) if params_node is not None else '()'}"
    b.add_callable(node, f"{class_qn}.{name}", name, class_qn=class_qn, params=_params(b, node),
                   signature=_drop_annotations(signature), return_type=b.text(ret) if ret is not None else None,
                   doc=doc_before(b, node), body=body if node.type in METHODS else None)


def _drop_annotations(signature: str) -> str:
    lines = [line for line in signature.strip().splitlines() if not line.strip().startswith("@")]
    return " ".join(" ".join(lines).split())


def _params(b: FileBuilder, node: Any) -> list[dict[str, Any]]:
    plist = node.child_by_field_name("parameters")
    out = []
    for p in plist.named_children if plist is not None else ():
        if p.type == "formal_parameter":
            out.append(param(b.text(p.child_by_field_name("name")), b.text(p.child_by_field_name("type"))))
        elif p.type == "spread_parameter":
            declarator = next((c for c in p.named_children if c.type == "variable_declarator"), None)
            type_ = next((c for c in p.named_children if c.type not in ("variable_declarator", "modifiers")), None)
            name = b.text(declarator.child_by_field_name("name")) if declarator is not None else f"_{len(out)}"
            out.append(param(name, b.text(type_) if type_ is not None else None, None, "var_positional"))
    return out


def _raw_call(b: FileBuilder, node: Any) -> str | None:
    if node.type == "object_creation_expression":
        type_ = node.child_by_field_name("type")
        name = strip_generics(b.text(type_)) if type_ is not None else ""
        return f"{name}.{name.rsplit('.', 1)[-1]}" if name else None
    name = b.text(node.child_by_field_name("name"))
    obj = node.child_by_field_name("object")
    if obj is None or obj.type == "this":
        return f"self.{name}"
    if obj.type in ("identifier", "field_access", "scoped_identifier"):
        dotted = b.text(obj).replace("this.", "self.", 1)
        return f"{dotted}.{name}" if all(part.isidentifier() for part in dotted.split(".")) else None
    return None


def _add_import(b: FileBuilder, node: Any) -> None:
    target = next((c for c in node.named_children if c.type in ("scoped_identifier", "identifier")), None)
    if target is None:
        return
    name = b.text(target)
    wildcard = any(c.type == "asterisk" for c in node.named_children)
    static = any(c.type == "static" for c in node.children)
    if wildcard:
        b.graph.imports.append(name)
        return
    b.graph.imports.append(name.rpartition(".")[0] if static else name)
    b.graph.aliases[name.rsplit(".", 1)[-1]] = name


class JavaParser(LanguageParser):
    name = "java"
    suffixes = (".java",)
    display = "Java"
    fence = "java"
    unit = "package"
    grammars = {"java": ("tree_sitter_java", "language")}
    calls = CALLS

    def module_name(self, rel: str, root_name: str, marked: dict[str, str]) -> str:
        """The folder, dotted: the parser takes the `package` declaration."""
        return rel.rpartition("/")[0].replace("/", ".") or root_name

    def parse(self, path: str, module_name: str, data: bytes, *, is_package: bool = False) -> FileGraph:
        return parse(path, module_name, data, self.name)
