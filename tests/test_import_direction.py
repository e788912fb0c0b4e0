"""Imports flow server -> tools -> domain: nothing under tools/ imports graphtune.server at
run time (type-only imports under `if TYPE_CHECKING:` are allowed: they never execute)."""

from __future__ import annotations

import ast
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []

    def visit(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        if not type_only and isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
        if not type_only and isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(tree, False)
    return found


def test_tools_never_import_the_server_at_run_time() -> None:
    offenders = []
    for path in sorted(TOOLS.rglob("*.py")):
        for line, module in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if module == "graphtune.server" or module.startswith("graphtune.server."):
                offenders.append(f"{path.relative_to(TOOLS.parent)}:{line} imports {module}")
    assert not offenders, "upward imports (tools -> server):\n" + "\n".join(offenders)
