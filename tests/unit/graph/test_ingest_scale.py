"""Ingest-at-scale changes (issue 21) keep the graph as it was: the Python body index's pruned
walk finds what `ast.walk` finds, write batches do not change the graph, and warming the
tree-sitter parsers before the pool forks changes nothing but where they are loaded."""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import textwrap
from pathlib import Path

import pytest
from graphtune.server.settings import Settings
from graphtune.tools.graph import ingest
from graphtune.tools.graph.embedded import EmbeddedGraph
from graphtune.tools.graph.ingest import IngestParams, run_ingest
from graphtune.tools.graph.body_index import raw_call_name as _raw_call_name
from graphtune.tools.graph.python_parser import _BodyIndex
from graphtune.tools.graph.schema import NODE_TABLES, REL_TABLES

TRICKY = textwrap.dedent('''
    import os, sys as system
    from . import sibling
    from ..pkg import name as alias
    from .star import *
    @decorate(arg=call())
    class A(Base[int], metaclass=make()):
        x: Annotated[int, Field(default=f())] = g()
        def m(self, a=default(), *args: list[h()], **kw) -> ret():
            import json
            lam = lambda y: (yield_fn(y), (yield y))
            def inner():
                yield from gen()
            match command.split():
                case [Point(x=0, y=0)] if guard():
                    print(f"{value!r:>{width()}} {other()}")
                case {"k": v, **rest}:
                    pass
                case [*items] | Cls(a, b=c):
                    pass
            return [z() for z in zs() if cond(z)] + {k(): v() for k, v in it()} and (w := walrus())
        async def am(self):
            async with ctx() as c, other() as d:
                async for i in aiter_():
                    await c.send(i)[0]().chain()()
            try:
                pass
            except (E1, E2) as err:
                raise Wrapped() from err
            global G
            del x[idx()]
            yield
    def top(*, key=kw_default(), **options):
        return not check() or -neg() @ mat()
    ''')


def _reference(tree: ast.Module) -> tuple[list, list, list, list]:
    """What the index held before the pruned walk: every node of `ast.walk`, classified, sorted."""
    calls, yields, imports, defs = [], [], [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _raw_call_name(node.func)
            if name:
                calls.append(((node.lineno, node.col_offset), name))
        elif type(node) in (ast.Yield, ast.YieldFrom):
            yields.append((node.lineno, node.col_offset))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(((node.lineno, node.col_offset), ast.dump(node)))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            defs.append(((node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)))
    return sorted(set(calls)), sorted(yields), sorted(imports), sorted(defs)


def _indexed(tree: ast.Module) -> tuple[list, list, list, list]:
    index = _BodyIndex(tree)
    return (sorted(set(index.calls)), index.yields, sorted((pos, ast.dump(node)) for pos, node in index.imports),
            index.defs)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0])


def test_pruned_walk_finds_what_ast_walk_finds() -> None:
    trees = [ast.parse(TRICKY)]
    for package in ("email", "asyncio", "json", "importlib"):
        trees += [ast.parse(p.read_bytes()) for p in sorted(_package_dir(package).rglob("*.py"))]
    for tree in trees:
        assert _indexed(tree) == _reference(tree)
    index = _BodyIndex(trees[0])
    names = {name for _, name in index.calls}
    assert {"decorate", "call", "make", "Field", "f", "g", "default", "h", "ret", "yield_fn", "gen", "guard",
            "print", "width", "other", "z", "zs", "cond", "k", "v", "it", "walrus", "ctx", "aiter_", "c.send",
            "Wrapped", "idx", "kw_default", "check", "neg", "mat"} <= names


def _dump(settings: Settings) -> list[str]:
    """Every node with every property and every edge, sorted (bench/graph_dump.py without the report)."""
    out = []
    with EmbeddedGraph(settings.graph_dir, read_only=True) as g:
        for table, columns in NODE_TABLES.items():
            names = ", ".join(f"n.`{name}`" for name, _ in columns if name != "ingested_at")
            out += sorted(json.dumps(row) for row in g.rows(f"MATCH (n:{table}) RETURN {names}"))
        for rel, pairs in REL_TABLES.items():
            for src, dst in pairs:
                out += sorted(json.dumps([rel, *row]) for row in g.rows(
                    f"MATCH (a:{src})-[:{rel}]->(b:{dst}) RETURN a.uid, b.uid"))
    return out


def test_write_batches_do_not_change_the_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = tmp_path / "code"
    for package in ("email", "asyncio"):  # > 64 files: the parser processes run (after warm)
        shutil.copytree(_package_dir(package), code / package)
    shutil.copytree(Path(__file__).parents[2] / "fixtures" / "real" / "uuid", code / "uuid")  # Go: packages span files
    from graphtune.tools.graph.embedded_writer import EmbeddedWriter

    loads: list[int] = []
    real_load = EmbeddedWriter.load

    def counted(self, files, patterns):  # noqa: ANN001, ANN202
        if files:
            loads.append(len(files))
        return real_load(self, files, patterns)

    monkeypatch.setattr(EmbeddedWriter, "load", counted)
    monkeypatch.setattr(ingest, "POOL_MIN_BYTES", 0)  # the parser processes run, whatever the size
    graphs, reports, batches = [], [], []
    for batch_bytes in (ingest.WRITE_BATCH_BYTES, 100_000):  # one batch; then a batch every few files
        monkeypatch.setattr(ingest, "WRITE_BATCH_BYTES", batch_bytes)
        loads.clear()
        settings = Settings(home=tmp_path / f"home{batch_bytes}")
        settings.ensure_dirs()
        result = run_ingest(IngestParams(path=str(code), workers=2), settings)
        graphs.append(_dump(settings))
        batches.append(len(loads))
        reports.append({k: result[k] for k in ("graph_counts", "graph_version", "added", "files_parsed")})
    assert reports[0] == reports[1] and reports[0]["graph_counts"]["CodeFile"] > 64
    assert batches[0] == 1 and batches[1] > 5
    assert graphs[0] == graphs[1]


def test_small_inputs_are_parsed_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtune.tools.graph.discovery import discover

    files = discover(_package_dir("json"), [], ["python"]) * 13  # >= 64 files, < POOL_MIN_BYTES
    assert len(files) >= 64 and sum(f.size for f in files) < ingest.POOL_MIN_BYTES

    def no_pool(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a parser pool was started for a small input")

    monkeypatch.setattr(ingest, "ordered_map", no_pool)
    assert len(list(ingest._parse_stream(files, 2, True, "cb"))) == len(files)
    monkeypatch.setattr(ingest, "POOL_MIN_BYTES", 0)
    with pytest.raises(AssertionError, match="parser pool"):
        list(ingest._parse_stream(files, 2, True, "cb"))


def test_warm_loads_the_grammars_the_files_need() -> None:
    from graphtune.tools.graph import lang_go, lang_java, lang_typescript
    from graphtune.tools.graph.discovery import discover
    from graphtune.tools.graph.languages import warm
    from graphtune.tools.graph.ts_common import parser_for, query

    parser_for.cache_clear()
    query.cache_clear()
    root = Path(__file__).parents[2] / "fixtures" / "real"
    warm(discover(root / "immer", [], ["typescript"]) + discover(root / "uuid", [], ["go"]))
    loaded = query.cache_info().currsize
    assert loaded >= 2
    for name, calls in (("typescript", lang_typescript.CALLS), ("go", lang_go.CALLS)):
        misses = query.cache_info().misses
        query(name, calls)
        assert query.cache_info().misses == misses  # loaded by warm: a cache hit
    query("java", lang_java.CALLS)
    assert query.cache_info().currsize == loaded + 1  # Java was not loaded: no Java file


def test_a_grammar_that_cannot_load_does_not_fail_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtune.tools.graph import languages
    from graphtune.tools.graph.discovery import discover

    def broken(files):  # noqa: ANN001, ANN202
        raise ModuleNotFoundError("no grammar wheel")

    monkeypatch.setattr(languages, "warm", broken)
    monkeypatch.setattr(ingest, "POOL_MIN_BYTES", 0)
    files = discover(_package_dir("json"), [], ["python"]) * 13
    results = list(ingest._parse_stream(files, 2, True, "cb"))
    assert len(results) == len(files) and not any(isinstance(r, tuple) for r in results)
