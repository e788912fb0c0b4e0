"""The normalized record every graph source yields, whatever its schema or property names."""

from __future__ import annotations

from dataclasses import dataclass, field

NODE_TYPES = ("Method", "Class", "Function", "Pattern", "CodeFile")


@dataclass(slots=True)
class CodeRecord:
    node_type: str
    key: str  # qualified name (code), path (CodeFile) or name (Pattern)
    name: str
    file_path: str = ""
    docstring: str = ""
    signature: str = ""
    parameters: list[str] = field(default_factory=list)
    return_type: str = ""
    source: str = ""
    class_name: str = ""
    base_classes: list[str] = field(default_factory=list)
    decorators: list[str] = field(default_factory=list)
    is_async: bool = False
    members: list[str] = field(default_factory=list)  # methods of a class; classes+functions of a file
    calls: list[str] = field(default_factory=list)
    called_by: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    description: str = ""  # CodeFile / Pattern
    category: str = ""
    example: str = ""
    best_practices: str = ""
    used_by: list[str] = field(default_factory=list)  # Pattern: code that implements it
