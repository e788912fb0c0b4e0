"""Design-pattern and idiom detection from syntax alone (documented in docs/graph.md).

Each detector looks at one class or function node and returns pattern names from PATTERNS.
They are deliberately conservative: a pattern is reported only on a clear syntactic signal.
"""

from __future__ import annotations

import ast

PATTERNS: dict[str, dict[str, str]] = {
    "context_manager": {"category": "protocol", "description": "Defines __enter__/__exit__ (or async variants) "
                        "so instances work in a `with` block.",
                        "best_practices": "Release resources in __exit__ even on error; return False to propagate."},
    "iterator": {"category": "protocol", "description": "Implements __iter__ and __next__.",
                 "best_practices": "Raise StopIteration when exhausted; keep __iter__ returning self."},
    "singleton": {"category": "creational", "description": "Caches one instance in a class attribute via __new__.",
                  "best_practices": "Prefer a module-level instance; guard creation if used from threads."},
    "abstract_base_class": {"category": "structural", "description": "Declares abstract methods (abc) for "
                            "subclasses to implement.",
                            "best_practices": "Keep the abstract surface small and documented."},
    "dataclass": {"category": "structural", "description": "A @dataclass record type.",
                  "best_practices": "Use frozen=True for values; default_factory for mutable defaults."},
    "enum": {"category": "structural", "description": "An Enum of named constants.",
             "best_practices": "Compare members by identity; avoid relying on values."},
    "exception_type": {"category": "error_handling", "description": "A custom exception class.",
                       "best_practices": "Derive from the most specific built-in; keep a clear message."},
    "protocol": {"category": "structural", "description": "A typing.Protocol (structural interface).",
                 "best_practices": "Describe only what callers need; mark runtime_checkable if isinstance is used."},
    "factory_method": {"category": "creational", "description": "A classmethod that builds instances "
                       "(from_*/create*/build*).",
                       "best_practices": "Name it for its input (from_json); return cls(...) so subclasses work."},
    "descriptor": {"category": "structural", "description": "Implements __get__ (and maybe __set__).",
                   "best_practices": "Use __set_name__ to learn the attribute name."},
    "property": {"category": "idiom", "description": "A @property accessor.",
                 "best_practices": "Keep getters cheap and side-effect free."},
    "memoization": {"category": "performance", "description": "Caches results with functools.lru_cache/cache.",
                    "best_practices": "Only for pure functions with hashable arguments; bound the cache."},
    "generator": {"category": "idiom", "description": "A generator function (yield).",
                  "best_practices": "Document what is yielded; close resources in finally."},
    "decorator": {"category": "structural", "description": "A function that wraps another and returns the "
                  "wrapper (decorator).",
                  "best_practices": "Use functools.wraps to keep the wrapped function's metadata."},
    "async_function": {"category": "concurrency", "description": "A coroutine function (async def).",
                       "best_practices": "Never block the event loop; await I/O."},
}


def _decorator_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _method_names(node: ast.ClassDef) -> set[str]:
    return {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def detect_class_patterns(node: ast.ClassDef, bases: list[str], decorators: list[str]) -> list[str]:
    methods = _method_names(node)
    found = []
    if {"__enter__", "__exit__"} <= methods or {"__aenter__", "__aexit__"} <= methods:
        found.append("context_manager")
    if {"__iter__", "__next__"} <= methods:
        found.append("iterator")
    if "__new__" in methods and "_instance" in ast.unparse(node):
        found.append("singleton")
    if any(b.split(".")[-1] in ("ABC", "ABCMeta") for b in bases) or any(
            _decorator_name(d) == "abstractmethod" for n in node.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for d in n.decorator_list):
        found.append("abstract_base_class")
    if any(d.split("(")[0].split(".")[-1] == "dataclass" for d in decorators):
        found.append("dataclass")
    if any(b.split(".")[-1] in ("Enum", "IntEnum", "StrEnum", "Flag", "IntFlag") for b in bases):
        found.append("enum")
    if any(b.split(".")[-1].endswith(("Exception", "Error", "Warning")) for b in bases):
        found.append("exception_type")
    if any(b.split(".")[-1] == "Protocol" for b in bases):
        found.append("protocol")
    if "__get__" in methods:
        found.append("descriptor")
    return found


def detect_function_patterns(node: ast.FunctionDef | ast.AsyncFunctionDef, decorators: list[str],
                             is_generator: bool) -> list[str]:
    found = []
    short = {d.split("(")[0].split(".")[-1] for d in decorators}
    if "property" in short or "cached_property" in short:
        found.append("property")
    if short & {"lru_cache", "cache"}:
        found.append("memoization")
    if "classmethod" in short and node.name.startswith(("from_", "create", "build")):
        found.append("factory_method")
    if isinstance(node, ast.AsyncFunctionDef):
        found.append("async_function")
    if is_generator:  # computed by the parser's single pass over the body (nested functions excluded)
        found.append("generator")
    inner = [n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    returns = [n for n in node.body if isinstance(n, ast.Return) and isinstance(n.value, ast.Name)]
    if inner and any(r.value.id in inner for r in returns):  # type: ignore[union-attr]
        found.append("decorator")
    return found
