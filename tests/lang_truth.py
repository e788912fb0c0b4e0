"""Independent counts of Go, Java and Rust definitions, for checking the tree-sitter ingest.

Written separately from tools/graph/lang_*.py: declarative tree-sitter queries (the ingest
walks nodes by hand) plus an ancestor check, counting by the rules documented in those
modules (one definition per qualified name). Grammars come from the same wheels, so a
grammar bug would hit both; the TypeScript count uses the TypeScript compiler instead
(tests/ts_count.js).
"""

from __future__ import annotations

import re
from pathlib import Path

import tree_sitter

_GRAMMAR = {"go": "tree_sitter_go", "java": "tree_sitter_java", "rust": "tree_sitter_rust"}


def _lang(name: str) -> tree_sitter.Language:
    import importlib

    return tree_sitter.Language(importlib.import_module(_GRAMMAR[name]).language())


def _captures(lang: tree_sitter.Language, source: str, node: tree_sitter.Node) -> dict[str, list[tree_sitter.Node]]:
    return tree_sitter.QueryCursor(tree_sitter.Query(lang, source)).captures(node)


def _matches(lang: tree_sitter.Language, source: str, node: tree_sitter.Node) -> list[dict[str, tree_sitter.Node]]:
    """One dict per match (capture name -> its node): captures that belong together stay together."""
    cursor = tree_sitter.QueryCursor(tree_sitter.Query(lang, source))
    return [{name: nodes[0] for name, nodes in caps.items()} for _, caps in cursor.matches(node)]


def _t(node: tree_sitter.Node) -> str:
    return node.text.decode()


def _bare(type_text: str) -> str:
    return re.sub(r"<.*>|\[.*\]", "", type_text).lstrip("*&").strip()


GO_Q = """
(source_file (type_declaration (type_spec name: (type_identifier) @class)))
(source_file (function_declaration name: (identifier) @function))
(source_file (method_declaration receiver: (parameter_list (parameter_declaration type: (_) @recv)) name: (field_identifier) @method))
(source_file (type_declaration (type_spec name: (type_identifier) @iface type: (interface_type (method_elem name: (field_identifier) @imethod)))))
"""
_GO_SKIP = re.compile(r"^//go:build (js|windows|darwin|wasm|plan9)\s*$", re.MULTILINE)


def count_go(root: Path) -> dict[str, int]:
    lang = _lang("go")
    parser = tree_sitter.Parser(lang)
    classes, functions, methods = set(), set(), set()
    for path in sorted(root.rglob("*.go")):
        data = path.read_bytes()
        if _GO_SKIP.search(data.decode()) or re.search(r"_(windows|js|darwin|wasm)\.go$", path.name):
            continue
        pkg = str(path.parent.relative_to(root))
        tree = parser.parse(data)
        caps = _captures(lang, GO_Q, tree.root_node)
        classes |= {(pkg, _t(n)) for n in caps.get("class", [])}
        functions |= {(pkg, _t(n)) for n in caps.get("function", [])}
        for match in _matches(lang, GO_Q, tree.root_node):
            if "recv" in match:
                methods.add((pkg, _bare(_t(match["recv"])), _t(match["method"])))
        for node in caps.get("imethod", []):
            owner = node.parent.parent.parent.child_by_field_name("name")
            methods.add((pkg, _t(owner), _t(node)))
    return {"classes": len(classes), "functions": len(functions), "methods": len(methods)}


JAVA_Q = """
[(class_declaration name: (identifier) @class) (interface_declaration name: (identifier) @class)
 (enum_declaration name: (identifier) @class) (record_declaration name: (identifier) @class)
 (annotation_type_declaration name: (identifier) @class)]
[(method_declaration name: (identifier) @method) (constructor_declaration name: (identifier) @method)
 (compact_constructor_declaration name: (identifier) @method)]
"""
_JAVA_TYPES = {"class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
               "annotation_type_declaration"}
_JAVA_BODIES = {"class_body", "interface_body", "enum_body", "enum_body_declarations", "annotation_type_body"}


def _java_owner_path(decl: tree_sitter.Node) -> list[str] | None:
    """Names of the enclosing types, outermost first, or None when a method body or an anonymous
    class is in between (a local type, not counted)."""
    names, node = [], decl
    while node.parent is not None:
        parent = node.parent
        if parent.type == "program":
            return names
        if parent.type in _JAVA_BODIES:
            node = parent
            continue
        if parent.type in _JAVA_TYPES and node.type in _JAVA_BODIES:
            names.insert(0, _t(parent.child_by_field_name("name")))
            node = parent
            continue
        return None
    return None


def count_java(root: Path) -> dict[str, int]:
    lang = _lang("java")
    parser = tree_sitter.Parser(lang)
    classes, methods = set(), set()
    for path in sorted(root.rglob("*.java")):
        tree = parser.parse(path.read_bytes())
        package = re.search(rb"^package\s+([\w.]+)\s*;", path.read_bytes(), re.MULTILINE)
        pkg = package.group(1).decode() if package else ""
        caps = _captures(lang, JAVA_Q, tree.root_node)
        for name in caps.get("class", []):
            owners = _java_owner_path(name.parent)
            if owners is not None:
                classes.add((pkg, *owners, _t(name)))
                if name.parent.type == "record_declaration":
                    methods.add((pkg, *owners, _t(name), _t(name)))
        for name in caps.get("method", []):
            owners = _java_owner_path(name.parent)
            if owners:
                methods.add((pkg, *owners, _t(name)))
    return {"classes": len(classes), "functions": 0, "methods": len(methods)}


RUST_Q = """
[(struct_item name: (type_identifier) @class) (enum_item name: (type_identifier) @class)
 (union_item name: (type_identifier) @class) (trait_item name: (type_identifier) @class)]
(function_item name: (identifier) @function)
(impl_item type: (_) @impl_type body: (declaration_list (function_item name: (identifier) @impl_method)))
(trait_item name: (type_identifier) @trait body: (declaration_list
  [(function_item name: (identifier) @trait_method) (function_signature_item name: (identifier) @trait_method)]))
"""


def _rust_scope(node: tree_sitter.Node) -> list[str] | None:
    """Inline module names around an item, or None when it sits in a function, impl or trait."""
    names, parent = [], node.parent
    while parent is not None and parent.type != "source_file":
        if parent.type == "declaration_list" and parent.parent is not None and parent.parent.type == "mod_item":
            names.insert(0, _t(parent.parent.child_by_field_name("name")))
            parent = parent.parent.parent
            continue
        return None
    return names


def count_rust(root: Path) -> dict[str, int]:
    lang = _lang("rust")
    parser = tree_sitter.Parser(lang)
    classes, functions, methods = set(), set(), set()
    for path in sorted(root.rglob("*.rs")):
        tree = parser.parse(path.read_bytes())
        file_key = str(path.relative_to(root))
        caps = _captures(lang, RUST_Q, tree.root_node)
        for name in caps.get("class", []):
            scope = _rust_scope(name.parent)
            if scope is not None:
                classes.add((file_key, *scope, _t(name)))
        for name in caps.get("function", []):
            scope = _rust_scope(name.parent)
            if scope is not None:
                functions.add((file_key, *scope, _t(name)))
        for match in _matches(lang, RUST_Q, tree.root_node):
            if "impl_method" not in match:
                continue
            name, type_node = match["impl_method"], match["impl_type"]
            impl = type_node.parent
            if _rust_scope(impl) is None:
                continue  # an impl inside a function body: local, like the types it is for
            generics = impl.child_by_field_name("type_parameters")
            params = {_t(c).split(":")[0].strip() for c in generics.named_children} if generics else set()
            type_name = _bare(_t(type_node)).split("::")[-1]
            if type_name in params or not re.fullmatch(r"\w+", type_name):
                continue
            methods.add((type_name, _t(name)))  # a type's methods, from any file: one per name
        for name in caps.get("trait_method", []):
            if _rust_scope(name.parent.parent.parent) is None:
                continue
            methods.add((_t(name.parent.parent.parent.child_by_field_name("name")), _t(name)))
    return {"classes": len(classes), "functions": len(functions), "methods": len(methods)}
