"""One walk over a parsed Python module that records, by source position, what the per-function
scan needs: raw call names, yields, imports and nested definitions (python_parser.BodyIndex).

Why its own module and why this shape: it is the Python ingest's hottest loop (every node of every
file, ~10M nodes for 0.5M lines). A generic walk (`ast.walk`, or a stack walk that loops over each
node's `_fields` with `getattr` and `isinstance`) spent ~120 ns per node, a third of what `ast.parse`
itself costs. Here each node class gets a plan, made once per class: its tag (call, yield, import,
definition or nothing) and an `operator.attrgetter` of only the fields that can hold such a node.
A node then costs one dict lookup, one C call that fetches all its child fields at once, and list
`extend`s instead of a per-item `isinstance` loop (a None or non-node value pushed that way is popped
as a class without fields, which costs less than testing every item).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from operator import attrgetter
from typing import Any

Pos = tuple[int, int]

# Fields that never hold a node that can contain a call, yield, import or definition: names and
# other scalars, expression contexts (`Load()`, one per Name/Attribute), operators, import aliases.
LEAF_FIELDS = frozenset(("ctx", "op", "ops", "id", "attr", "arg", "name", "asname", "module", "level", "kind",
                         "type_comment", "conversion", "is_async", "simple", "names", "tag", "rest", "kwd_attrs"))
CALL, YIELD, IMPORT, DEFINITION = 1, 2, 3, 4
_TAGS: dict[type, int] = {ast.Call: CALL, ast.Yield: YIELD, ast.YieldFrom: YIELD, ast.Import: IMPORT,
                          ast.ImportFrom: IMPORT, ast.FunctionDef: DEFINITION, ast.AsyncFunctionDef: DEFINITION,
                          ast.Lambda: DEFINITION, ast.ClassDef: DEFINITION}

# class -> (tag or 0, getter of its child fields or None, whether the getter returns one value, not a tuple)
Plan = tuple[int, Callable[[Any], Any] | None, bool]
_PLANS: dict[type, Plan] = {}


def _plan(kind: type) -> Plan:
    """The plan of a node class (made on first sight; a non-node class has no fields to follow)."""
    fields: tuple[str, ...] = ()
    if issubclass(kind, ast.AST) and kind is not ast.Constant:  # a Constant holds no node (its value is data)
        fields = tuple(name for name in kind._fields if name not in LEAF_FIELDS)
        if kind is ast.Call:  # its callee is followed by the walk only when it is not a dotted name (index_module)
            fields = tuple(name for name in fields if name != "func")
    plan = (_TAGS.get(kind, 0), attrgetter(*fields) if fields else None, len(fields) == 1)
    _PLANS[kind] = plan
    return plan


def raw_call_name(func: ast.expr) -> str | None:
    """`a.b.c` for a call of `a.b.c(...)`; None when the callee is not a dotted name (`f()()`, `x[0]()`)."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
        return ".".join(reversed(parts))
    return None


def index_module(tree: ast.AST) -> tuple[list[tuple[Pos, str]], list[Pos], list[tuple[Pos, ast.AST]], list[tuple[Pos, Pos]]]:
    """(calls, yields, imports, definitions) of the whole tree, each sorted by position; the walk
    order does not matter (depth first here), only the positions do."""
    calls: list[tuple[Pos, str]] = []
    yields: list[Pos] = []
    imports: list[tuple[Pos, ast.AST]] = []
    defs: list[tuple[Pos, Pos]] = []
    stack: list[Any] = [tree]
    pop, push, extend = stack.pop, stack.append, stack.extend
    plans, plan_of, call_name = _PLANS.get, _plan, raw_call_name
    while stack:
        node = pop()
        plan = plans(node.__class__)
        if plan is None:
            plan = plan_of(node.__class__)
        tag, children, single = plan
        if tag:
            if tag == CALL:
                name = call_name(node.func)
                if name:  # a dotted name holds nothing else to find
                    calls.append(((node.lineno, node.col_offset), name))
                else:
                    push(node.func)
            elif tag == YIELD:
                yields.append((node.lineno, node.col_offset))
            elif tag == IMPORT:
                imports.append(((node.lineno, node.col_offset), node))
            else:
                defs.append(((node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)))
        if children is None:
            continue
        if single:
            value = children(node)
            if value.__class__ is list:
                extend(value)
            elif value is not None:
                push(value)
            continue
        for value in children(node):
            if value.__class__ is list:
                extend(value)
            elif value is not None:
                push(value)
    calls.sort(key=_position)
    imports.sort(key=_position)
    yields.sort()
    defs.sort()
    return calls, yields, imports, defs


def _position(item: tuple[Pos, Any]) -> Pos:
    return item[0]
