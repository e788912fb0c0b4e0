"""Rust files -> FileGraph.

What counts (the independent count in tests mirrors it):
- Class: every `struct`, `enum`, `union` and `trait` at module level, also inside inline
  `mod x { ... }` blocks (qualified `crate.file.x.Name`), kind struct/enum/union/trait.
- Function: every module-level `fn` (also in inline modules).
- Method: every `fn` of an `impl` block (class: the implemented type, which may live in another
  file) and every `fn` of a trait (with or without a default body). `self` is a parameter, as in Python.
- Bases (INHERITS): supertraits (`trait A: B`) and `impl Trait for Type` (Type -> Trait).
- Calls: `f()`, `a::b::f()` (`crate::`, `self::`, `super::` made absolute), `Self::f()` and
  `self.f()` (as `self.f`), `x.f()`.
- Module: the crate's name (Cargo.toml) and the path in it (`src/a/b.rs` -> `semver.a.b`;
  `mod.rs`/`lib.rs`/`main.rs` name their folder; `crate.a.b` without a Cargo.toml); `use` declarations give aliases and imports. rustdoc (`///`, `//!`) docstrings.
"""

from __future__ import annotations

from typing import Any

from graphtune.tools.graph.language_parser import LanguageParser, nearest
from graphtune.tools.graph.python_parser import FileGraph
from graphtune.tools.graph.ts_common import (
    FileBuilder,
    clean_line_doc,
    line_docs_before,
    param,
    parse_tree,
    strip_generics,
)

CALLS = "(call_expression) @call"
KINDS = {"struct_item": "struct", "enum_item": "enum", "union_item": "union", "trait_item": "trait"}
SKIP = ("attribute_item",)


def module_name(rel_path: str, crate: str = "crate") -> str:
    """`src/a/b.rs` of crate `semver` -> `semver.a.b` (`crate` when there is no Cargo.toml);
    `rel_path` is relative to the crate's folder. The crate's name heads every module, so the
    crates of a workspace never share qualified names; `crate::` paths resolve to it."""
    parts = rel_path.removesuffix(".rs").split("/")
    parts = [crate, *parts[parts.index("src") + 1:]] if "src" in parts else [crate, *parts]
    if parts[-1] in ("mod", "lib", "main") and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def parse(path: str, module: str, data: bytes, language: str = "rust") -> FileGraph:
    b = FileBuilder(path, module, data, language, ("rust", CALLS))
    root, b.graph.parse_gap = parse_tree("rust", data)
    b.index_calls(root, lambda builder, node: _raw_call(builder, node, module))
    inner = [b.text(n).rstrip("\n") for n in root.named_children if n.type == "line_comment"
             and b.text(n).startswith("//!")]
    b.graph.description = clean_line_doc(inner, "//!").split("\n\n")[0].replace("\n", " ")
    impl_bases: list[tuple[str, str]] = []
    _walk(b, root, module, impl_bases)
    local = {c["qualified_name"]: c for c in b.graph.classes}
    for class_qn, base in impl_bases:
        if class_qn in local:
            local[class_qn]["base_classes"].append(base)
            b.graph.inherits.append((class_qn, base))
        else:
            b.graph.foreign_bases.append((class_qn, base))
    return b.finish()


def _walk(b: FileBuilder, container: Any, scope: str, impl_bases: list[tuple[str, str]]) -> None:
    for node in container.named_children:
        if node.type in KINDS:
            _add_type(b, node, scope)
        elif node.type == "function_item":
            _add_fn(b, node, scope, None)
        elif node.type == "impl_item":
            _add_impl(b, node, scope, impl_bases)
        elif node.type == "use_declaration":
            _add_use(b, node.child_by_field_name("argument"), "", scope)
        elif node.type == "mod_item" and node.child_by_field_name("body") is not None:
            _walk(b, node.child_by_field_name("body"), f"{scope}.{b.text(node.child_by_field_name('name'))}",
                  impl_bases)


def _add_type(b: FileBuilder, node: Any, scope: str) -> None:
    name = b.text(node.child_by_field_name("name"))
    qn, kind = f"{scope}.{name}", KINDS[node.type]
    bounds = node.child_by_field_name("bounds")
    bases = [strip_generics(b.text(t)) for t in bounds.named_children] if bounds is not None else []
    b.add_class(node, qn, name, kind, [base for base in bases if base and base[0].isalpha()],
                line_docs_before(b, node, "///", SKIP))
    if kind == "trait":
        body = node.child_by_field_name("body")
        for item in body.named_children if body is not None else ():
            if item.type in ("function_item", "function_signature_item"):
                _add_fn(b, item, scope, qn)


def _add_impl(b: FileBuilder, node: Any, scope: str, impl_bases: list[tuple[str, str]]) -> None:
    type_node = node.child_by_field_name("type")
    if type_node is None:
        return
    generics = node.child_by_field_name("type_parameters")
    type_params = {b.text(p.child_by_field_name("name") or p) for p in generics.named_children} if generics else set()
    type_name = strip_generics(b.text(type_node)).replace("::", ".")
    if not type_name or type_name in type_params or not type_name.replace(".", "").replace("_", "").isalnum():
        return  # a blanket impl (`impl<T> Trait for T`) or an impl for a tuple/slice/reference type
    class_qn = _absolute(b, type_name, scope)
    trait = node.child_by_field_name("trait")
    if trait is not None:
        impl_bases.append((class_qn, strip_generics(b.text(trait)).replace("::", ".")))
    body = node.child_by_field_name("body")
    for item in body.named_children if body is not None else ():
        if item.type == "function_item":
            _add_fn(b, item, scope, class_qn)


def _absolute(b: FileBuilder, name: str, scope: str) -> str:
    head, dot, tail = name.partition(".")
    if head in b.graph.aliases:
        return b.graph.aliases[head] + dot + tail
    if head == "crate":
        return ".".join([scope.split(".")[0], tail]) if tail else name
    return f"{scope}.{name}"


def _add_fn(b: FileBuilder, node: Any, scope: str, class_qn: str | None) -> None:
    name = b.text(node.child_by_field_name("name"))
    body = node.child_by_field_name("body")
    ret = node.child_by_field_name("return_type")
    text = b.text(node)
    signature = text[: body.start_byte - node.start_byte] if body is not None else text.rstrip(";")
    is_async = any(c.type == "function_modifiers" and "async" in b.text(c) for c in node.children)
    b.add_callable(node, f"{class_qn or scope}.{name}", name, class_qn=class_qn, params=_params(b, node),
                   signature=signature, return_type=b.text(ret) if ret is not None else None,
                   doc=line_docs_before(b, node, "///", SKIP), body=body, is_async=is_async)


def _params(b: FileBuilder, node: Any) -> list[dict[str, Any]]:
    plist = node.child_by_field_name("parameters")
    out = []
    for p in plist.named_children if plist is not None else ():
        if p.type == "self_parameter":
            out.append(param("self"))
        elif p.type == "parameter":
            pattern, type_ = p.child_by_field_name("pattern"), p.child_by_field_name("type")
            out.append(param(b.text(pattern), b.text(type_) if type_ is not None else None))
        elif p.type == "variadic_parameter":
            out.append(param(f"_{len(out)}", None, None, "var_positional"))
    return out


def _raw_call(b: FileBuilder, node: Any, module: str) -> str | None:
    fn = node.child_by_field_name("function")
    if fn is not None and fn.type == "generic_function":
        fn = fn.child_by_field_name("function")
    if fn is None:
        return None
    if fn.type == "identifier":
        return b.text(fn)
    if fn.type == "field_expression":
        value, field = fn.child_by_field_name("value"), fn.child_by_field_name("field")
        if value is not None and value.type in ("self", "identifier") and field is not None:
            return f"{b.text(value)}.{b.text(field)}"
        return None
    if fn.type == "scoped_identifier":
        return _path(b.text(fn), module)
    return None


def _path(text: str, module: str) -> str | None:
    # a plain segment (`foo_bar`) is its own strip_generics: skip the regexes for it (most segments of
    # every call path: ~5 % of a Rust file's parse)
    parts = [p if p.replace("_", "").isalnum() else strip_generics(p) for p in text.split("::")]
    if not all(p and p.replace("_", "").isalnum() for p in parts):
        return None
    if parts[0] == "Self":
        return ".".join(["self", *parts[1:]])
    if parts[0] == "crate":
        return ".".join([module.split(".")[0], *parts[1:]])
    if parts[0] == "self":
        return ".".join([module, *parts[1:]])
    if parts[0] == "super":
        base = module.split(".")
        while parts and parts[0] == "super":
            parts, base = parts[1:], base[:-1]
        return ".".join([*base, *parts])
    return ".".join(parts)


def _add_use(b: FileBuilder, node: Any, prefix: str, module: str) -> None:
    """`use a::b::{C, d as e}` -> aliases C -> a.b.C, e -> a.b.d; imports a.b (and a.b.C)."""
    if node is None:
        return
    kind = node.type
    if kind in ("scoped_identifier", "identifier", "crate", "self", "super"):
        full = _join(prefix, b.text(node), module)
        if full:
            b.graph.imports += [full.rpartition(".")[0], full] if "." in full else [full]
            b.graph.aliases[full.rsplit(".", 1)[-1]] = full
    elif kind == "use_as_clause":
        full = _join(prefix, b.text(node.child_by_field_name("path")), module)
        if full:
            b.graph.imports += [full.rpartition(".")[0], full]
            b.graph.aliases[b.text(node.child_by_field_name("alias"))] = full
    elif kind == "scoped_use_list":
        path = node.child_by_field_name("path")
        inner = _join(prefix, b.text(path), module) if path is not None else prefix
        _add_use(b, node.child_by_field_name("list"), inner or "", module)
    elif kind == "use_list":
        for child in node.named_children:
            _add_use(b, child, prefix, module)
    elif kind == "use_wildcard":
        target = next(iter(node.named_children), None)
        full = _join(prefix, b.text(target), module) if target is not None else prefix
        if full:
            b.graph.imports.append(full)


def _join(prefix: str, path: str, module: str) -> str | None:
    text = f"{prefix.replace('.', '::')}::{path}" if prefix else path
    if prefix and path == "self":
        text = prefix.replace(".", "::")
    resolved = _path(text, module)
    return resolved if resolved and not resolved.startswith("self") else None


class RustParser(LanguageParser):
    name = "rust"
    suffixes = (".rs",)
    display = "Rust"
    fence = "rust"
    grammars = {"rust": ("tree_sitter_rust", "language")}
    calls = CALLS
    marker = "Cargo.toml"

    def read_marker(self, path: str, rel_dir: str) -> str:
        return _crate_name(path) or "crate"

    def module_name(self, rel: str, root_name: str, marked: dict[str, str]) -> str:
        home = nearest(rel.rpartition("/")[0], marked)
        if home is None:
            return module_name(rel)
        return module_name(rel[len(home) + 1:] if home not in (".", "") else rel, marked[home])

    def parse(self, path: str, module_name: str, data: bytes, *, is_package: bool = False) -> FileGraph:
        return parse(path, module_name, data, self.name)


def _crate_name(path: str) -> str | None:
    """`name` of the `[package]` table, as Rust code names the crate (`-` becomes `_`)."""
    section = ""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                line = line.strip()
                if line.startswith("["):
                    section = line
                elif section == "[package]" and line.startswith("name") and "=" in line:
                    return line.split("=", 1)[1].strip().strip('"\'').replace("-", "_") or None
    except OSError:
        return None
    return None
