"""No function in tools/ or server/ is over 60 lines (issue 20: split what grows past it).

Counted from the first decorator to the last line, docstring and comments included; nested
functions count on their own and inside their parent. ALLOWED names the exceptions, each with
its reason (none today).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 60
ALLOWED: dict[str, str] = {}  # "tools/x.py::function": why it stays long


def _long_functions() -> dict[str, int]:
    found = {}
    for folder in ("tools", "server"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    start = min([d.lineno for d in node.decorator_list] + [node.lineno])
                    lines = node.end_lineno - start + 1  # type: ignore[operator]
                    if lines > MAX_LINES:
                        found[f"{path.relative_to(ROOT).as_posix()}::{node.name}"] = lines
    return found


def test_no_function_is_over_60_lines() -> None:
    long = {name: lines for name, lines in _long_functions().items() if name not in ALLOWED}
    assert not long, f"functions over {MAX_LINES} lines (split them, or add one to ALLOWED with a reason): {long}"


def test_the_allow_list_holds_only_long_functions() -> None:
    stale = set(ALLOWED) - set(_long_functions())
    assert not stale, f"no longer over {MAX_LINES} lines: remove from ALLOWED: {sorted(stale)}"
