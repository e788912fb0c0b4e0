"""Graph sources behind extraction: one protocol, two implementations (embedded, Neo4j).

A source streams `CodeRecord`s per node type and counts the expected properties that
records lacked, so a graph with other property names says so instead of yielding nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, Protocol

from graphtune.tools.graph.embedded import EmbeddedGraph, decode_list
from graphtune.tools.graph.records import CodeRecord
from graphtune.tools.graph.selection import check_codebases, merge_patterns
from graphtune.tools.graph.unfinished import check_finished


class GraphSource(Protocol):
    missing: Counter[str]  # "Method.docstring" -> records lacking it

    def iter_records(self, node_type: str) -> Iterator[CodeRecord]: ...
    def known_codebases(self) -> list[str]: ...
    def enrich(self, records: list[CodeRecord]) -> None: ...
    def count(self, node_type: str) -> int: ...
    def fingerprint(self) -> str: ...
    def close(self) -> None: ...


# {where}: "" or a code base filter on n; records carry n.codebase, the key stays the readable name.
_CALLABLE_Q = """MATCH (n:{label}) {where} RETURN n.qualified_name, n.name, n.file_path, {text}, {owner}, n.codebase"""
_CALLABLE_TEXT = "n.docstring, n.signature, n.parameters, n.return_type, n.source, n.is_async"
_CALLS_Q = "MATCH (a)-[:CALLS]->(b) {where} RETURN a.codebase, a.qualified_name, b.qualified_name"
_CLASS_Q = """MATCH (n:Class) {where} OPTIONAL MATCH (n)-[:HAS_METHOD]->(m) WITH n, collect(m.name) AS methods
RETURN n.qualified_name, n.name, n.file_path, {text}, n.base_classes, {decorators}, methods, n.codebase"""
_FILE_Q = """MATCH (n:CodeFile) {where} OPTIONAL MATCH (n)-[:DEFINES]->(d) WITH n, collect(d.name) AS members
OPTIONAL MATCH (n)-[:IMPORTS]->(i) RETURN n.path, n.module_name, n.description, members, collect(i.module_name),
 n.codebase"""
_PATTERN_Q = """MATCH (n:Pattern) {where} OPTIONAL MATCH (x)-[:IMPLEMENTS_PATTERN]->(n)
RETURN n.name, n.description, n.category, n.example, n.best_practices, collect(x.qualified_name), n.codebase"""


class EmbeddedSource:
    """Reads graphtune's own schema from the embedded LadybugDB store (read-only), optionally
    only some code bases. A selected code base (all of them: each one the graph holds) whose
    last ingest did not finish is refused (CodebaseIncomplete): its graph may be partial."""

    def __init__(self, settings: Any, codebases: list[str] | None = None, lock_wait_s: float | None = None,
                 graph: EmbeddedGraph | None = None) -> None:
        """`graph`: an already open store (the ingest's writer) to read through, left open by
        close(); the ingest snapshots its graph version this way instead of reopening the store."""
        self._owned = graph is None
        if graph is None:
            wait = getattr(settings, "graph_lock_wait_s", 0.0) if lock_wait_s is None else lock_wait_s
            graph = EmbeddedGraph(settings.graph_dir, read_only=True, lock_wait_s=wait)
        self.graph = graph
        self.missing: Counter[str] = Counter()
        try:
            known = self.known_codebases()
            if self._owned:  # the ingest's own snapshot reads through its writer: its code base is unfinished
                check_finished(settings.graph_dir, codebases if codebases is not None else known)
            self.codebases = check_codebases(codebases, known)
        except BaseException:
            self.close()
            raise
        self.params = {"cbs": self.codebases} if self.codebases is not None else {}

    def _where(self, var: str = "n") -> str:
        return f"WHERE {var}.codebase IN $cbs" if self.codebases is not None else ""

    def known_codebases(self) -> list[str]:
        return sorted({row[0] for row in self.graph.rows("MATCH (c:CodeBase) RETURN c.name")}
                      | {row[0] for row in self.graph.rows("MATCH (f:CodeFile) RETURN DISTINCT f.codebase")})

    def close(self) -> None:
        if self._owned:
            self.graph.close()

    def fingerprint(self) -> str:
        return self.graph.fingerprint(self.codebases)

    def count(self, node_type: str) -> int:
        what = "count(DISTINCT n.name)" if node_type == "Pattern" else "count(n)"
        return next(self.graph.rows(f"MATCH (n:{node_type}) {self._where()} RETURN {what}", self.params))[0]

    def enrich(self, records: list[CodeRecord]) -> None:
        """Fill calls / called_by for the records that made the cut (one pass over CALLS edges),
        instead of aggregating edges for every node while scanning: most nodes are filtered out."""
        wanted = {(r.codebase, r.key): r for r in records if r.node_type in ("Function", "Method")}
        if not wanted:
            return
        calls: dict[tuple[str, str], list[str]] = {}
        callers: dict[tuple[str, str], list[str]] = {}
        for cb, caller, callee in self.graph.rows(_CALLS_Q.format(where=self._where("a")), self.params):
            if (cb, caller) in wanted:
                calls.setdefault((cb, caller), []).append(callee)
            if (cb, callee) in wanted:  # CALLS never cross code bases
                callers.setdefault((cb, callee), []).append(caller)
        for key, record in wanted.items():
            record.calls, record.called_by = calls.get(key, ()), callers.get(key, ())

    def iter_records(self, node_type: str, text: bool = True, names: list[str] | None = None) -> Iterator[CodeRecord]:
        """`text=False`: code records without their text properties (docstring, signature,
        parameters, return type, source, async, decorators), for a reader that has them hashed
        already (the ingest's graph-version snapshot): most of the bytes a scan reads.
        `names`: only the code records of these qualified names (in scan order, as without)."""
        where, params = self._where(), self.params
        if names is not None:
            where = f"{where} AND" if where else "WHERE"
            where, params = f"{where} n.qualified_name IN $names", {**params, "names": names}
        blank = "NULL" if not text else None

        def rows(query: str) -> Iterator[list[Any]]:
            return self.graph.rows(query, params)

        if node_type in ("Function", "Method"):
            owner = "n.class_name" if node_type == "Method" else "''"
            for (qn, name, path, doc, sig, params_, ret, src, is_async, cls, cb) in rows(
                    _CALLABLE_Q.format(label=node_type, owner=owner, where=where,
                                       text=", ".join([blank] * 6) if blank else _CALLABLE_TEXT)):
                yield CodeRecord(node_type, qn, name, path, doc or "", sig or "", decode_list(params_), ret or "",
                                 src or "", cls or "", is_async=bool(is_async), codebase=cb or "")
        elif node_type == "Class":
            query = _CLASS_Q.format(where=where, text=f"{blank}, {blank}" if blank else "n.docstring, n.source",
                                    decorators=blank or "n.decorators")
            for qn, name, path, doc, src, bases, decos, methods, cb in rows(query):
                yield CodeRecord("Class", qn, name, path, doc or "", source=src or "", base_classes=decode_list(bases),
                                 decorators=decode_list(decos), members=methods, codebase=cb or "")
        elif node_type == "CodeFile":
            for path, module, desc, members, imports, cb in rows(_FILE_Q.format(where=where)):
                yield CodeRecord("CodeFile", path, module, path, description=desc or "", members=members,
                                 imports=imports, codebase=cb or "")
        elif node_type == "Pattern":
            yield from merge_patterns(
                CodeRecord("Pattern", name, name, description=desc or "", category=cat or "", example=example or "",
                           best_practices=practices or "", used_by=used_by, codebase=cb or "")
                for name, desc, cat, example, practices, used_by, cb in rows(
                    _PATTERN_Q.format(where=where) + " ORDER BY n.codebase"))


def open_source(source: str, settings: Any, mapping: Any = None, codebases: list[str] | None = None) -> GraphSource:
    """Open a graph source; `codebases` (None = all) selects code bases, unknown names are a ConfigError."""
    if source == "neo4j":
        from graphtune.tools.graph.neo4j_store import Neo4jSource

        return Neo4jSource(settings, mapping, codebases)
    return EmbeddedSource(settings, codebases)


async def check_graph_source(settings: Any) -> tuple[list[Any], list[dict[str, Any]] | None]:
    """validate_environment's graph part: (checks, the embedded graph's code bases or None). The embedded
    store opens once, in a worker thread, without waiting for a writer; Neo4j answers in time."""
    import anyio

    checks, codebases = await anyio.to_thread.run_sync(_embedded_report, settings)
    if settings.neo4j_uri or settings.graph_backend == "neo4j":
        from graphtune.tools.graph.neo4j_store import check_neo4j

        checks.append(await check_neo4j(settings))
    return checks, codebases


def _embedded_report(settings: Any) -> tuple[list[Any], list[dict[str, Any]] | None]:
    """The graph:embedded check (the store opens, its counts) and its code bases (name, root, files, nodes,
    last_ingest, incomplete), from one read-only open; the code bases are None when there is no graph or it
    cannot be opened now (the check says why)."""
    from graphtune.tools.checks import Check
    from graphtune.tools.errors import GraphtuneError
    from graphtune.tools.graph import unfinished

    if not settings.graph_dir.exists():
        return [Check(name="graph:embedded", ok=True,
                      detail=f"no graph yet at {settings.graph_dir}; ingest_codebase creates it")], None
    try:
        # the store itself, not EmbeddedSource: a code base whose ingest stopped part-way is a warning
        # of its own below, not a store that fails to open
        with EmbeddedGraph(settings.graph_dir, read_only=True, lock_wait_s=0.0) as graph:  # answers now
            every = graph.counts()
            found = graph.codebases()
    except GraphtuneError as exc:
        busy = "locked by another process" in exc.message  # a writer at work (an ingest job): jobs wait for it
        detail = f"being written right now; jobs wait for the writer. {exc.message}" if busy else exc.message
        return [Check(name="graph:embedded", ok=busy, detail=detail, fix=exc.hint)], None
    counts = {t: every[t] for t in ("CodeFile", "Class", "Function", "Method")}
    names = [c["name"] for c in found]
    checks = [Check(name="graph:embedded", ok=True, detail=f"LadybugDB at {settings.graph_dir}: {counts}; "
                    f"{len(names)} code base(s): {', '.join(names) or 'none'}")]
    left = set(unfinished.unfinished(settings.graph_dir)) & set(names)
    checks += _unfinished_check(settings, sorted(left))
    return checks, [{**c, "incomplete": c["name"] in left} for c in found]


def _unfinished_check(settings: Any, names: list[str]) -> list[Any]:
    """A warning for each of these code bases, whose last ingest stopped part-way: its counts above are
    partial and readers refuse it until it is ingested again (graph/unfinished.py)."""
    from graphtune.tools.checks import Check
    from graphtune.tools.graph import unfinished

    left = [unfinished.read(settings.graph_dir, name) or {"codebase": name} for name in names]
    if not left:
        return []
    listed = ", ".join(f"`{r['codebase']}`" for r in left)
    again = "; ".join(f"ingest_codebase(path={r['root']!r}, codebase={r['codebase']!r})" if r.get("root")
                      else f"ingest_codebase(codebase={r['codebase']!r}) with its path or package" for r in left)
    return [Check(name="graph:codebases", ok=False, required=False,
                  detail=f"the last ingest of {listed} stopped part-way: its graph is partial and extraction "
                  "refuses it (codebase_incomplete)", fix=f"Run it again; the next ingest rebuilds it whole: {again}.")]


def check_embedded_codebases(settings: Any, names: list[str]) -> None:
    """Fail fast on unknown code base names (the extraction job checks again when it opens the graph)."""
    if settings.graph_dir.exists():
        EmbeddedSource(settings, names).close()
