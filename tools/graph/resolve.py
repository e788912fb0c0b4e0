"""Resolve raw names recorded by the parser (calls, bases, imports) to nodes in the graph."""

from __future__ import annotations

from collections.abc import Iterable


def resolve_name(raw: str, module: str, aliases: dict[str, str], class_qn: str | None) -> list[str]:
    """Candidate qualified names for `raw` as written in `module` (most specific first)."""
    head, _, tail = raw.partition(".")
    candidates = []
    if head in ("self", "cls") and class_qn and tail and "." not in tail:
        candidates.append(f"{class_qn}.{tail}")
    elif head in aliases:
        target = aliases[head]
        candidates.append(f"{target}.{tail}" if tail else target)
    else:
        candidates.append(f"{module}.{raw}")
        if "." in raw:
            candidates.append(raw)  # already absolute (e.g. rewritten through a function-local import)
    return candidates


def resolve_calls(
    calls: Iterable[tuple[str, str, str | None, str]],
    callables: dict[str, str],
    classes: set[str],
    file_info: dict[str, tuple[str, dict[str, str]]],
) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """calls: (caller qn, raw callee, class qn, file path); callables: qn -> label.

    Returns edges grouped by (from label, to label). A call of a class resolves to its __init__.
    """
    edges: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for caller, raw, class_qn, path in calls:
        module, aliases = file_info.get(path, ("", {}))
        for candidate in resolve_name(raw, module, aliases, class_qn):
            if candidate in classes:
                candidate += ".__init__"
            if candidate in callables and caller in callables and candidate != caller:
                key = (callables[caller], callables[candidate])
                edges.setdefault(key, set()).add((caller, candidate))
                break
    return edges


def resolve_bases(
    bases: Iterable[tuple[str, str, str]], classes: set[str], file_info: dict[str, tuple[str, dict[str, str]]]
) -> set[tuple[str, str]]:
    """bases: (class qn, raw base, file path) -> INHERITS pairs for bases that are in the graph."""
    edges = set()
    for class_qn, raw, path in bases:
        module, aliases = file_info.get(path, ("", {}))
        scope = class_qn.rpartition(".")[0]
        candidates = resolve_name(raw, module, aliases, None) + [f"{scope}.{raw}"]
        for candidate in candidates:
            if candidate in classes and candidate != class_qn and class_qn in classes:
                edges.add((class_qn, candidate))
                break
    return edges


def resolve_imports(imports: Iterable[tuple[str, str]], modules: dict[str, list[str]],
                    class_files: dict[str, str] | None = None) -> set[tuple[str, str]]:
    """imports: (file path, imported name) -> IMPORTS pairs between files in the graph.

    A name is a module (every file of it: a Go or Java package has several) or, failing that,
    a class (Java's `import a.b.C` imports the file that defines `C`)."""
    class_files = class_files or {}
    pairs = set()
    for path, name in imports:
        targets = modules.get(name) or ([class_files[name]] if name in class_files else [])
        pairs.update((path, target) for target in targets if target != path)
    return pairs


def foreign_bases(files: Iterable[tuple[str, list[str]]]) -> list[tuple[str, str, str]]:
    """CodeFile.inherits entries ("class base", e.g. a Rust `impl Trait for T` in another file
    than T) -> (class qn, raw base, path of the file that declared it), as resolve_bases takes them."""
    return [(qn, base, path) for path, entries in files for qn, _, base in (e.partition(" ") for e in entries)]


def cross_file_methods(methods: Iterable[tuple[str, str, str]], class_files: dict[str, str]) -> set[tuple[str, str]]:
    """methods: (method qn, class qn, path) -> HAS_METHOD pairs for methods declared in another
    file than their type (Go methods, Rust impl blocks); same-file pairs are loaded with the file."""
    return {(cls, qn) for qn, cls, path in methods if cls in class_files and class_files[cls] != path}
