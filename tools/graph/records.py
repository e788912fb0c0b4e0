"""The normalized record every graph source yields, whatever its schema or property names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NODE_TYPES = ("Method", "Class", "Function", "Pattern", "CodeFile")


@dataclass(slots=True)
class CodeRecord:
    """Empty sequences default to shared tuples: building ~50k records per second must not
    allocate eight lists each (that was a third of extraction time)."""

    node_type: str
    key: str  # qualified name (code), path (CodeFile) or name (Pattern)
    name: str
    file_path: str = ""
    docstring: str = ""
    signature: str = ""
    parameters: Sequence[str] = ()
    return_type: str = ""
    source: str = ""
    class_name: str = ""
    base_classes: Sequence[str] = ()
    decorators: Sequence[str] = ()
    is_async: bool = False
    members: Sequence[str] = ()  # methods of a class; classes+functions of a file
    calls: Sequence[str] = ()
    called_by: Sequence[str] = ()
    imports: Sequence[str] = ()
    description: str = ""  # CodeFile / Pattern
    category: str = ""
    example: str = ""
    best_practices: str = ""
    used_by: Sequence[str] = ()  # Pattern: code that implements it
    codebase: str = ""  # the code base the node belongs to ("" when the graph has none)


def files_by_module(files: Iterable[CodeRecord]) -> dict[str, list[CodeRecord]]:
    """CodeFile records grouped by module name (first-seen order), each group sorted by path.
    A module may span files (a Go package): whatever reads module facts or hashes treats the
    group as one module, independent of the order the store returns the files in."""
    groups: dict[str, list[CodeRecord]] = {}
    for record in files:
        groups.setdefault(record.name, []).append(record)
    for group in groups.values():
        group.sort(key=lambda r: r.file_path)
    return groups
