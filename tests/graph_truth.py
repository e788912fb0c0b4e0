"""An independent count of classes/functions/methods with plain `ast`, written separately from
graphtune's parser (same documented rules: module-level and class-nested definitions, inside
if/try/with blocks; nothing inside functions; last definition of a name wins)."""

from __future__ import annotations

import ast
from pathlib import Path


def count_definitions(root: Path) -> dict[str, int]:
    classes: set[str] = set()
    functions: set[str] = set()
    methods: set[str] = set()

    def visit(body: list[ast.stmt], prefix: str, in_class: bool) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                classes.add(f"{prefix}.{node.name}")
                visit(node.body, f"{prefix}.{node.name}", True)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                (methods if in_class else functions).add(f"{prefix}.{node.name}")
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.AsyncWith)) or type(node).__name__ == "TryStar":
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(node, field, []) or [], prefix, in_class)
                for handler in getattr(node, "handlers", []) or []:
                    visit(handler.body, prefix, in_class)

    files = 0
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except SyntaxError:
            continue
        files += 1
        visit(tree.body, str(path.relative_to(root)), False)
    overlap = functions & classes  # a class and function of one name: Python keeps the last; rare
    return {"files": files, "classes": len(classes), "functions": len(functions - overlap), "methods": len(methods)}
