"""The normalized record every graph source yields, whatever its schema or property names."""

from __future__ import annotations

from collections.abc import Sequence
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
