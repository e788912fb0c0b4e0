"""TypeScript and JavaScript files -> FileGraph (one walker: the grammars share node names).

What counts (the TypeScript compiler API count in tests mirrors it):
- Class: top-level `class`, `abstract class`, `interface` and `enum` declarations (also
  `export`ed), with kind class/interface/enum. Classes inside functions or namespaces are local.
- Function: top-level `function`/`function*` declarations with a body, and top-level
  `const|let|var name = (arrow) function` declarators.
- Method: a class's methods with a body, abstract methods, the constructor (named
  `constructor`), getters/setters, fields holding an (arrow) function (`produce = () => ...`);
  an interface's method signatures. Overloads: one method.
- Bases: `extends` and `implements` (interfaces: `extends`), type arguments dropped.
- Calls: `f()`, `a.b.f()`, `this.f()` (as `self.f`), `new C()` (as `C.constructor`).
- Imports: ES `import` and `require()`; relative specifiers resolve to the module of that
  file (`./util.js` -> `pkg.util`, `./dir/index.ts` -> `pkg.dir`).
A module's name is its path without extension, dotted; `index` names its folder.
"""

from __future__ import annotations

import posixpath
from typing import Any

from graphtune.tools.graph.language_parser import LanguageParser
from graphtune.tools.graph.python_parser import FileGraph
from graphtune.tools.graph.ts_common import FileBuilder, doc_before, param, parse_tree

CLASS_KINDS = {"class_declaration": "class", "abstract_class_declaration": "class",
               "interface_declaration": "interface", "enum_declaration": "enum"}
FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function"}
METHODS = {"method_definition", "abstract_method_signature"}
CALLS = "(call_expression) @call (new_expression) @call"
EXTENSIONS = (".d.ts", ".tsx", ".ts", ".mts", ".cts", ".jsx", ".js", ".mjs", ".cjs")


def module_name(rel_path: str) -> str:
    stem = rel_path
    for ext in EXTENSIONS:
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    parts = stem.split("/")
    if parts[-1] == "index" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def grammar_for(path: str) -> str:
    if path.endswith(".tsx"):
        return "tsx"
    return "typescript" if path.endswith((".ts", ".mts", ".cts")) else "javascript"


def parse(path: str, module: str, data: bytes, language: str) -> FileGraph:
    name = grammar_for(path)
    b = FileBuilder(path, module, data, language, (name, CALLS))
    root, b.graph.parse_gap = parse_tree(name, data)
    b.index_calls(root, _raw_call)
    for node in root.named_children:
        outer = node
        if node.type == "export_statement":
            node = node.child_by_field_name("declaration") or node
        if node.type == "import_statement":
            _add_import(b, node)
        elif node.type in CLASS_KINDS:
            _add_class(b, node, outer)
        elif node.type in ("function_declaration", "generator_function_declaration"):
            _add_function(b, node, outer, node.child_by_field_name("name"), node, "")
        elif node.type in ("lexical_declaration", "variable_declaration"):
            _add_declarators(b, node, outer)
    return b.finish()


def _add_declarators(b: FileBuilder, node: Any, outer: Any) -> None:
    for declarator in node.named_children:
        if declarator.type != "variable_declarator":
            continue
        value, name = declarator.child_by_field_name("value"), declarator.child_by_field_name("name")
        if value is None or name is None:
            continue
        if value.type in FUNCTION_VALUES and name.type == "identifier":
            _add_function(b, value, outer, name, declarator, node.children[0].type)
        elif value.type == "call_expression" and b.text(value.child_by_field_name("function")) == "require":
            _add_require(b, name, value)


def _add_class(b: FileBuilder, node: Any, outer: Any) -> None:
    name = b.text(node.child_by_field_name("name"))
    if not name:
        return  # `export default class extends X {}`: nothing to name it by
    qn, kind = f"{b.graph.module_name}.{name}", CLASS_KINDS[node.type]
    b.add_class(outer, qn, name, kind, _bases(b, node), doc_before(b, outer))
    body = node.child_by_field_name("body")
    for member in body.named_children if body is not None else ():
        if member.type in METHODS or (kind == "interface" and member.type == "method_signature"):
            _add_method(b, member, qn)
        elif member.type in ("public_field_definition", "field_definition"):
            value = member.child_by_field_name("value")
            name = member.child_by_field_name("name") or member.child_by_field_name("property")
            if value is not None and name is not None and value.type in FUNCTION_VALUES:
                _add_field_method(b, member, value, name, qn)


def _bases(b: FileBuilder, node: Any) -> list[str]:
    bases = []
    for child in node.named_children:
        if child.type == "class_heritage":  # JS: the expression itself; TS: extends/implements clauses
            clauses = [c for c in child.named_children if c.type in ("extends_clause", "implements_clause")]
            items = [n for c in clauses for n in c.named_children if n.type != "type_arguments"] or \
                [n for n in child.named_children if n.type not in ("extends_clause", "implements_clause")]
        elif child.type == "extends_type_clause":
            items = child.named_children
        else:
            continue
        bases += [_type_name(b, n) for n in items]
    return [base for base in bases if base]


def _type_name(b: FileBuilder, node: Any) -> str:
    if node.type == "generic_type":
        node = node.child_by_field_name("name") or node.named_children[0]
    text = b.text(node)
    return text if text.replace(".", "").replace("_", "").replace("$", "").isalnum() else ""


def _add_method(b: FileBuilder, node: Any, class_qn: str) -> None:
    name = b.text(node.child_by_field_name("name"))
    body = node.child_by_field_name("body")
    b.add_callable(node, f"{class_qn}.{name}", name, class_qn=class_qn, params=_params(b, node),
                   signature=_signature(b, node, body), return_type=_return(b, node), doc=doc_before(b, node),
                   body=body, is_async=_is_async(node))


def _add_field_method(b: FileBuilder, member: Any, fn: Any, name_node: Any, class_qn: str) -> None:
    """`produce = (base, recipe) => {...}` in a class body: a method bound to the instance."""
    name, body = b.text(name_node), fn.child_by_field_name("body")
    b.add_callable(member, f"{class_qn}.{name}", name, class_qn=class_qn, params=_params(b, fn),
                   signature=_signature(b, member, body), return_type=_return(b, fn), doc=doc_before(b, member),
                   body=body, is_async=_is_async(fn))


def _add_function(b: FileBuilder, fn: Any, outer: Any, name_node: Any, start: Any, keyword: str) -> None:
    """A function declaration, or `keyword name = function/arrow` (keyword: const, let or var)."""
    name = b.text(name_node)
    body = fn.child_by_field_name("body")
    if body is None or not name:
        return
    head = b.text(start)[: body.start_byte - start.start_byte].rstrip().removesuffix("=>").rstrip()
    signature = f"{keyword} {head}" if keyword else head
    b.add_callable(start, f"{b.graph.module_name}.{name}", name, class_qn=None, params=_params(b, fn),
                   signature=signature, return_type=_return(b, fn), doc=doc_before(b, outer), body=body,
                   is_async=_is_async(fn))


def _is_async(node: Any) -> bool:
    return any(child.type == "async" for child in node.children)


def _signature(b: FileBuilder, node: Any, body: Any) -> str:
    text = b.text(node)
    return text[: body.start_byte - node.start_byte].rstrip() if body is not None else text.rstrip(";")


def _return(b: FileBuilder, node: Any) -> str | None:
    ret = node.child_by_field_name("return_type")
    return b.text(ret).lstrip(":").strip() or None if ret is not None else None


def _params(b: FileBuilder, fn: Any) -> list[dict[str, Any]]:
    params_node = fn.child_by_field_name("parameters") or fn.child_by_field_name("parameter")
    if params_node is None:
        return []
    if params_node.type == "identifier":  # `x => x + 1`
        return [param(b.text(params_node))]
    out = []
    for p in params_node.named_children:
        kind, default, type_ = "positional", None, None
        if p.type in ("required_parameter", "optional_parameter"):
            pattern = p.child_by_field_name("pattern")
            type_node, value = p.child_by_field_name("type"), p.child_by_field_name("value")
            type_ = b.text(type_node).lstrip(":").strip() if type_node is not None else None
            default = b.text(value) if value is not None else None
        elif p.type == "assignment_pattern":
            pattern, default = p.child_by_field_name("left"), b.text(p.child_by_field_name("right"))
        elif p.type == "comment":
            continue
        else:
            pattern = p
        if pattern is None or pattern.type == "this":
            continue
        if pattern.type == "rest_pattern":
            kind, pattern = "var_positional", pattern.named_children[0] if pattern.named_children else pattern
        out.append(param(b.text(pattern), type_, default, kind))
    return out


def _raw_call(b: FileBuilder, node: Any) -> str | None:
    if node.type == "new_expression":
        target = _dotted(b, node.child_by_field_name("constructor"))
        return f"{target}.constructor" if target else None
    return _dotted(b, node.child_by_field_name("function"))


def _dotted(b: FileBuilder, node: Any) -> str | None:
    parts = []
    while node is not None and node.type == "member_expression":
        prop = node.child_by_field_name("property")
        if prop is None or prop.type != "property_identifier":
            return None
        parts.append(b.text(prop))
        node = node.child_by_field_name("object")
    if node is None or node.type not in ("identifier", "this"):
        return None
    parts.append("self" if node.type == "this" else b.text(node))
    return ".".join(reversed(parts))


def _resolve_specifier(b: FileBuilder, spec: str) -> str:
    if not spec.startswith("."):
        return spec
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(b.graph.path), spec))
    return module_name(joined) if joined.endswith(EXTENSIONS) else \
        module_name(joined + ".ts")


def _add_import(b: FileBuilder, node: Any) -> None:
    source = node.child_by_field_name("source")
    if source is None:
        return
    module = _resolve_specifier(b, b.text(source).strip("'\"`"))
    b.graph.imports.append(module)
    clause = next((c for c in node.named_children if c.type == "import_clause"), None)
    for child in clause.named_children if clause is not None else ():
        if child.type == "identifier":  # default import: usually the exported name
            b.graph.aliases[b.text(child)] = f"{module}.{b.text(child)}"
        elif child.type == "namespace_import" and child.named_children:
            b.graph.aliases[b.text(child.named_children[-1])] = module
        elif child.type == "named_imports":
            for spec in child.named_children:
                if spec.type == "import_specifier":
                    name, alias = spec.child_by_field_name("name"), spec.child_by_field_name("alias")
                    b.graph.aliases[b.text(alias or name)] = f"{module}.{b.text(name)}"


def _add_require(b: FileBuilder, name: Any, call: Any) -> None:
    args = call.child_by_field_name("arguments")
    strings = [a for a in args.named_children if a.type == "string"] if args is not None else []
    if not strings:
        return
    module = _resolve_specifier(b, b.text(strings[0]).strip("'\"`"))
    b.graph.imports.append(module)
    if name.type == "identifier":
        b.graph.aliases[b.text(name)] = module
    elif name.type == "object_pattern":
        for item in name.named_children:
            if item.type == "shorthand_property_identifier_pattern":
                b.graph.aliases[b.text(item)] = f"{module}.{b.text(item)}"


class TypeScriptParser(LanguageParser):
    name = "typescript"
    suffixes = (".ts", ".tsx", ".mts", ".cts")
    display = "TypeScript"
    fence = "typescript"
    grammars = {"typescript": ("tree_sitter_typescript", "language_typescript"),
                "tsx": ("tree_sitter_typescript", "language_tsx")}
    calls = CALLS

    def grammar_for(self, path: str) -> str:
        return grammar_for(path)

    def module_name(self, rel: str, root_name: str, marked: dict[str, str]) -> str:
        return module_name(rel)

    def parse(self, path: str, module_name: str, data: bytes, *, is_package: bool = False) -> FileGraph:
        return parse(path, module_name, data, self.name)


class JavaScriptParser(TypeScriptParser):
    """JavaScript: TypeScript's rules and module, the JavaScript grammar."""

    name = "javascript"
    suffixes = (".js", ".jsx", ".mjs", ".cjs")
    display = "JavaScript"
    fence = "javascript"
    grammars = {"javascript": ("tree_sitter_javascript", "language")}
