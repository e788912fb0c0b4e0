"""Graph sources behind extraction: one protocol, two implementations (embedded, Neo4j).

A source streams `CodeRecord`s per node type and counts the expected properties that
records lacked, so a graph with other property names says so instead of yielding nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, Protocol

from graphtune.tools.dataset.records import CodeRecord
from graphtune.tools.graph.embedded import EmbeddedGraph, decode_list


class GraphSource(Protocol):
    missing: Counter[str]  # "Method.docstring" -> records lacking it

    def iter_records(self, node_type: str) -> Iterator[CodeRecord]: ...
    def enrich(self, records: list[CodeRecord]) -> None: ...
    def count(self, node_type: str) -> int: ...
    def fingerprint(self) -> str: ...
    def close(self) -> None: ...


_CALLABLE_Q = """MATCH (n:{label}) RETURN n.qualified_name, n.name, n.file_path, n.docstring, n.signature,
 n.parameters, n.return_type, n.source, n.is_async, {owner}"""
_CALLS_Q = "MATCH (a)-[:CALLS]->(b) RETURN a.qualified_name, b.qualified_name"
_CLASS_Q = """MATCH (n:Class) OPTIONAL MATCH (n)-[:HAS_METHOD]->(m) WITH n, collect(m.name) AS methods
RETURN n.qualified_name, n.name, n.file_path, n.docstring, n.source, n.base_classes, n.decorators, methods"""
_FILE_Q = """MATCH (n:CodeFile) OPTIONAL MATCH (n)-[:DEFINES]->(d) WITH n, collect(d.name) AS members
OPTIONAL MATCH (n)-[:IMPORTS]->(i) RETURN n.path, n.module_name, n.description, members, collect(i.module_name)"""
_PATTERN_Q = """MATCH (n:Pattern) OPTIONAL MATCH (x)-[:IMPLEMENTS_PATTERN]->(n)
RETURN n.name, n.description, n.category, n.example, n.best_practices, collect(x.qualified_name)"""


class EmbeddedSource:
    """Reads graphtune's own schema from the embedded LadybugDB store (read-only)."""

    def __init__(self, settings: Any, lock_wait_s: float | None = None) -> None:
        wait = getattr(settings, "graph_lock_wait_s", 0.0) if lock_wait_s is None else lock_wait_s
        self.graph = EmbeddedGraph(settings.graph_dir, read_only=True, lock_wait_s=wait)
        self.missing: Counter[str] = Counter()

    def close(self) -> None:
        self.graph.close()

    def fingerprint(self) -> str:
        return self.graph.fingerprint()

    def count(self, node_type: str) -> int:
        return next(self.graph.rows(f"MATCH (n:{node_type}) RETURN count(n)"))[0]

    def enrich(self, records: list[CodeRecord]) -> None:
        """Fill calls / called_by for the records that made the cut (one pass over CALLS edges),
        instead of aggregating edges for every node while scanning: most nodes are filtered out."""
        wanted = {r.key: r for r in records if r.node_type in ("Function", "Method")}
        if not wanted:
            return
        calls: dict[str, list[str]] = {}
        callers: dict[str, list[str]] = {}
        for caller, callee in self.graph.rows(_CALLS_Q):
            if caller in wanted:
                calls.setdefault(caller, []).append(callee)
            if callee in wanted:
                callers.setdefault(callee, []).append(caller)
        for key, record in wanted.items():
            record.calls, record.called_by = calls.get(key, ()), callers.get(key, ())

    def iter_records(self, node_type: str) -> Iterator[CodeRecord]:
        rows = self.graph.rows
        if node_type in ("Function", "Method"):
            owner = "n.class_name" if node_type == "Method" else "''"
            for (qn, name, path, doc, sig, params, ret, src, is_async, cls) in rows(
                    _CALLABLE_Q.format(label=node_type, owner=owner)):
                yield CodeRecord(node_type, qn, name, path, doc or "", sig or "", decode_list(params), ret or "",
                                 src or "", cls or "", is_async=bool(is_async))
        elif node_type == "Class":
            for qn, name, path, doc, src, bases, decos, methods in rows(_CLASS_Q):
                yield CodeRecord("Class", qn, name, path, doc or "", source=src or "", base_classes=decode_list(bases),
                                 decorators=decode_list(decos), members=methods)
        elif node_type == "CodeFile":
            for path, module, desc, members, imports in rows(_FILE_Q):
                yield CodeRecord("CodeFile", path, module, path, description=desc or "", members=members,
                                 imports=imports)
        elif node_type == "Pattern":
            for name, desc, cat, example, practices, used_by in rows(_PATTERN_Q):
                yield CodeRecord("Pattern", name, name, description=desc or "", category=cat or "",
                                 example=example or "", best_practices=practices or "", used_by=used_by[:20])


def open_source(source: str, settings: Any, mapping: Any = None) -> GraphSource:
    if source == "neo4j":
        from graphtune.tools.graph.neo4j_store import Neo4jSource

        return Neo4jSource(settings, mapping)
    return EmbeddedSource(settings)


async def check_graph_source(settings: Any) -> list[Any]:
    """validate_environment's graph checks: the embedded store opens; Neo4j answers in time."""
    from graphtune.tools.environment import Check
    from graphtune.tools.errors import GraphtuneError

    checks = []
    if settings.graph_dir.exists():
        try:
            source = EmbeddedSource(settings, lock_wait_s=0.0)  # a check answers now, it does not wait
            counts = {t: source.count(t) for t in ("CodeFile", "Class", "Function", "Method")}
            source.close()
            checks.append(Check(name="graph:embedded", ok=True, detail=f"LadybugDB at {settings.graph_dir}: {counts}"))
        except GraphtuneError as exc:
            busy = "locked by another process" in exc.message  # a writer at work (an ingest job): jobs wait for it
            detail = f"being written right now; jobs wait for the writer. {exc.message}" if busy else exc.message
            checks.append(Check(name="graph:embedded", ok=busy, detail=detail, fix=exc.hint))
    else:
        checks.append(Check(name="graph:embedded", ok=True,
                            detail=f"no graph yet at {settings.graph_dir}; ingest_codebase creates it"))
    if settings.neo4j_uri or settings.graph_backend == "neo4j":
        from graphtune.tools.graph.neo4j_store import check_neo4j

        checks.append(await check_neo4j(settings))
    return checks
