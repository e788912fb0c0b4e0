"""The parser on small crafted sources: signatures, parameters, calls, patterns."""

from __future__ import annotations

from graphtune.tools.graph.python_parser import parse_file

SOURCE = b'''
"""Module doc."""
import functools
from .sibling import helper as h

class Base(ABC):
    @abstractmethod
    def run(self): ...

class Ctx(Base):
    """A context manager."""
    def __enter__(self): return self
    def __exit__(self, *exc): return False
    def run(self):
        self.step()
        h(1)
    def step(self): pass

def gen(n: int = 3, *args, key: str = "k", **kw) -> int:
    for i in range(n):
        yield i

def outer():
    def inner():
        yield 1
    return inner

@functools.lru_cache(maxsize=None)
def cached(x, /, y):
    return x
'''


def test_structure_calls_and_patterns() -> None:
    g = parse_file("pkg/mod.py", "pkg.mod", SOURCE)
    assert g.description == "Module doc."
    assert [c["qualified_name"] for c in g.classes] == ["pkg.mod.Base", "pkg.mod.Ctx"]
    assert {f["name"] for f in g.functions} == {"gen", "outer", "cached"}
    gen = next(f for f in g.functions if f["name"] == "gen")
    assert gen["signature"] == "def gen(n: int=3, *args, key: str='k', **kw) -> int"
    assert gen["parameters"] == ["n: int = 3", "*args", "key: str = 'k'", "**kw"]
    params = [p for p in g.parameters if p["owner"] == "pkg.mod.gen"]
    assert [(p["name"], p["kind"], p["order"]) for p in params] == [
        ("n", "positional", 0), ("args", "var_positional", 1), ("key", "keyword_only", 2), ("kw", "var_keyword", 3)]
    calls = {(caller, raw) for caller, raw, _ in g.calls}
    assert ("pkg.mod.Ctx.run", "self.step") in calls and ("pkg.mod.Ctx.run", "h") in calls  # resolved later
    assert not any(raw == "functools.lru_cache" for _, raw in calls)  # decorators are not calls of the function
    patterns = {(qn.split(".")[-1], name) for qn, _, name in g.patterns}
    assert ("Base", "abstract_base_class") in patterns and ("Ctx", "context_manager") in patterns
    assert ("gen", "generator") in patterns and ("outer", "decorator") in patterns
    assert ("outer", "generator") not in patterns  # the yield is in a nested function
    assert ("cached", "memoization") in patterns
    assert g.aliases == {"functools": "functools", "h": "pkg.sibling.helper"}
