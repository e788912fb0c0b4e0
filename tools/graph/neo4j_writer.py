"""Write graphtune's schema into a user's Neo4j (ingest with `write_to="neo4j"`).

Batched `UNWIND $rows AS r MERGE ...` in managed write transactions; idempotent (MERGE on
each node's `uid`, uniqueness constraints created first); every read and write is scoped to
one code base; cross-file edges recomputed for that code base with the same resolver as the
embedded store. Connectivity is verified first, so a dead server fails within
`neo4j_timeout_s` (+1 s) instead of after the driver's 30 s of transaction retries.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

from graphtune.tools.errors import GraphUnavailable, SchemaMismatch
from graphtune.tools.graph.csv_rows import NODE_KEYS, REL_KEYS, node_rows, rel_pairs
from graphtune.tools.graph.neo4j_store import make_driver, map_neo4j_errors
from graphtune.tools.graph.python_parser import FileGraph
from graphtune.tools.graph.resolve import (
    cross_file_methods,
    foreign_bases,
    resolve_bases,
    resolve_calls,
    resolve_imports,
)
from graphtune.tools.graph.schema import (
    DERIVED_RELS,
    NATURAL_KEYS,
    PRIMARY_KEYS,
    SCOPED_TABLES,
    graph_fingerprint,
    uid,
)

BATCH = 1000
LABELS = ("CodeFile", "Class", "Function", "Method", "Parameter", "Pattern", "CodeBase")


async def verify_connectivity(driver: Any, settings: Any) -> None:
    """Reach and authenticate against the server within the timeout, or raise GraphUnavailable."""
    try:
        await asyncio.wait_for(driver.verify_connectivity(), settings.neo4j_timeout_s + 1)
    except (asyncio.TimeoutError, TimeoutError) as exc:
        raise GraphUnavailable(f"Neo4j at {settings.neo4j_uri} did not answer within {settings.neo4j_timeout_s}s.",
                               field="NEO4J_URI", hint="Check that the server runs and NEO4J_URI is right, or "
                               "raise GRAPHTUNE_NEO4J_TIMEOUT_S.") from exc


def check_neo4j_writable(settings: Any) -> None:
    """Pre-flight before queueing an ingest into Neo4j: a coded error within the timeout."""
    async def go() -> None:
        driver = make_driver(settings)
        try:
            await verify_connectivity(driver, settings)
        finally:
            await driver.close()

    with map_neo4j_errors(settings):
        asyncio.run(go())


T = TypeVar("T")


class Neo4jWriter:
    def __init__(self, settings: Any, codebase: str) -> None:
        self.settings, self.codebase = settings, codebase
        self.loop = asyncio.new_event_loop()
        try:
            self.driver = make_driver(settings)
            self._run(verify_connectivity(self.driver, settings))
            self._migrate()
            for label in LABELS:
                self._write(f"CREATE CONSTRAINT graphtune_{label.lower()}_{PRIMARY_KEYS[label]} IF NOT EXISTS "
                            f"FOR (n:{label}) REQUIRE n.{PRIMARY_KEYS[label]} IS UNIQUE", {})
        except BaseException:
            self.close()
            raise

    def _migrate(self) -> None:
        """Graphs written before code bases: refuse old nodes (no `codebase`); drop the old
        single-key uniqueness constraints, which would forbid two code bases defining `a.b`."""
        old = self._read("MATCH (f:CodeFile) WHERE f.codebase IS NULL AND f.sha IS NOT NULL RETURN count(f) AS c")
        if old and old[0]["c"]:
            labels = " OR ".join(f"n:{t}" for t in SCOPED_TABLES)
            raise SchemaMismatch(
                f"Neo4j holds {old[0]['c']} CodeFile node(s) written by an older graphtune, before code bases "
                "existed. Nothing was changed.", field="write_to",
                hint=f"Delete them (`MATCH (n) WHERE ({labels}) AND n.codebase IS NULL DETACH DELETE n`), then "
                "ingest each code base again.")
        for row in self._read("SHOW CONSTRAINTS YIELD name, labelsOrTypes, properties "
                              "RETURN name, labelsOrTypes AS l, properties AS p"):
            labels, props = row["l"] or [], row["p"] or []
            if len(labels) == 1 and labels[0] in NATURAL_KEYS and props == [NATURAL_KEYS[labels[0]]]:
                self._write(f"DROP CONSTRAINT `{row['name']}` IF EXISTS", {})

    def _run(self, coro: Any) -> Any:
        with map_neo4j_errors(self.settings):
            return self.loop.run_until_complete(coro)

    def _write(self, query: str, params: dict[str, Any]) -> None:
        async def go() -> None:
            async with self.driver.session(database=self.settings.neo4j_database) as session:
                await session.execute_write(lambda tx: _consume(tx, query, params))
        self._run(go())

    def _read(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        async def go() -> list[dict[str, Any]]:
            async with self.driver.session(database=self.settings.neo4j_database) as session:
                return await session.execute_read(lambda tx: _fetch(tx, query, params or {}))
        return self._run(go())

    def _merge_nodes(self, label: str, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), BATCH):
            self._write(f"UNWIND $rows AS r MERGE (n:{label} {{uid: r.uid}}) SET n += r", {"rows": rows[i:i + BATCH]})

    def _merge_rels(self, rel: str, src: str, dst: str, pairs: list[tuple[str, str]]) -> None:
        """pairs: (from uid, to uid)."""
        rows = [{"a": a, "b": b} for a, b in pairs]
        for i in range(0, len(rows), BATCH):
            self._write(f"UNWIND $rows AS r MATCH (a:{src} {{uid: r.a}}) MATCH (b:{dst} {{uid: r.b}}) "
                        f"MERGE (a)-[:{rel}]->(b)", {"rows": rows[i:i + BATCH]})

    def codebase_root(self) -> str | None:
        rows = self._read("MATCH (c:CodeBase {name: $cb}) RETURN c.root AS r", {"cb": self.codebase})
        return rows[0]["r"] if rows else None

    def file_shas(self) -> dict[str, str]:
        return {r["path"]: r["sha"] for r in self._read(
            "MATCH (f:CodeFile {codebase: $cb}) RETURN f.path AS path, f.sha AS sha", {"cb": self.codebase})}

    def qualified_names(self) -> set[str]:
        """Qualified names of this code base's classes, functions and methods (unique per code base)."""
        return {r["q"] for label in ("Class", "Function", "Method") for r in self._read(
            f"MATCH (n:{label} {{codebase: $cb}}) RETURN n.qualified_name AS q", {"cb": self.codebase})}

    def delete_files(self, delete: list[str]) -> None:
        if delete:
            params = {"p": delete, "cb": self.codebase}
            self._write("MATCH (n) WHERE (n:Class OR n:Function OR n:Method OR n:Parameter) AND n.codebase = $cb "
                        "AND n.file_path IN $p DETACH DELETE n", params)
            self._write("MATCH (n:CodeFile {codebase: $cb}) WHERE n.path IN $p DETACH DELETE n", params)

    def load(self, graphs: list[FileGraph], patterns: dict[str, dict[str, str]]) -> None:
        """MERGE one batch of parsed files: the same rows and pairs the embedded store loads."""
        if not graphs:
            return
        rows = [node_rows(f) for f in graphs]
        for table in NODE_KEYS:
            batch = [dict(row) for per_file in rows for row in per_file[table]]
            if table == "CodeFile":  # Neo4j properties cannot hold maps
                for row in batch:
                    row["aliases"] = json.dumps(row["aliases"])
            self._merge_nodes(table, batch)
        examples: dict[str, str] = {}
        for f in graphs:
            for qn, _label, name in f.patterns:
                examples.setdefault(name, qn)
        existing = {r["n"] for r in self._read("MATCH (p:Pattern {codebase: $cb}) RETURN p.name AS n",
                                               {"cb": self.codebase})}
        self._merge_nodes("Pattern", [{"uid": uid(self.codebase, n), "codebase": self.codebase, "name": n,
                                       "example": examples[n], **patterns[n]}
                                      for n in sorted(examples) if n not in existing])
        pairs = [rel_pairs(f) for f in graphs]
        for key in REL_KEYS:
            self._merge_rels(*key, [pair for per_file in pairs for pair in per_file[key]])

    def prune_patterns(self) -> None:
        """Drop Pattern nodes of this code base that nothing implements any more; re-point a stale example."""
        params = {"cb": self.codebase}
        self._write("MATCH (p:Pattern {codebase: $cb}) WHERE NOT (p)<-[:IMPLEMENTS_PATTERN]-() DELETE p", params)
        self._write("MATCH (p:Pattern {codebase: $cb}) WHERE NOT EXISTS { MATCH (x)-[:IMPLEMENTS_PATTERN]->(p) "
                    "WHERE x.qualified_name = p.example } MATCH (x)-[:IMPLEMENTS_PATTERN]->(p) "
                    "WITH p, min(x.qualified_name) AS example SET p.example = example", params)

    def record_codebase(self, root: str) -> None:
        # the ingest's last write: every node and edge is in, so the unfinished mark goes (mark_unfinished)
        self._write("MERGE (c:CodeBase {name: $cb}) SET c.root = $root, c.ingested_at = $at REMOVE c.unfinished",
                    {"cb": self.codebase, "root": root, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def rebuild_derived_edges(self, fresh: bool = False) -> None:
        """Recompute this code base's derived edges; `fresh` (no stored file before this ingest)
        changes nothing here: Neo4j's DELETEs of nothing are cheap."""
        cb = self.codebase
        params = {"cb": cb}
        for rel in DERIVED_RELS:
            self._write(f"MATCH (a)-[r:{rel}]->() WHERE a.codebase = $cb DELETE r", params)
        self._write("MATCH (c:Class {codebase: $cb})-[r:HAS_METHOD]->(m:Method) WHERE c.file_path <> m.file_path "
                    "DELETE r", params)
        files = self._read("MATCH (f:CodeFile {codebase: $cb}) RETURN f.path AS p, f.module_name AS m, "
                           "f.aliases AS a, f.imports AS i, f.inherits AS x", params)
        file_info = {f["p"]: (f["m"], json.loads(f["a"] or "{}")) for f in files}
        modules: dict[str, list[str]] = {}
        for f in files:
            modules.setdefault(f["m"], []).append(f["p"])
        imports = [(f["p"], name) for f in files for name in (f["i"] or [])]
        cls_rows = self._read("MATCH (c:Class {codebase: $cb}) RETURN c.qualified_name AS q, c.file_path AS p, "
                              "c.base_classes AS b", params)
        class_files = {c["q"]: c["p"] for c in cls_rows}
        classes = set(class_files)
        bases = [(c["q"], b, c["p"]) for c in cls_rows for b in (c["b"] or [])]
        bases += foreign_bases((f["p"], f["x"] or []) for f in files)
        callables, calls, methods = {}, [], []
        for label in ("Function", "Method"):
            for row in self._read(f"MATCH (n:{label} {{codebase: $cb}}) RETURN n.qualified_name AS q, "
                                  "n.file_path AS p, n.raw_calls AS c, n.class_name AS k", params):
                callables[row["q"]] = label
                calls += [(row["q"], raw, row["k"], row["p"]) for raw in (row["c"] or [])]
                if row["k"]:
                    methods.append((row["q"], row["k"], row["p"]))

        def scoped(pairs: set[tuple[str, str]]) -> list[tuple[str, str]]:
            return sorted((uid(cb, a), uid(cb, b)) for a, b in pairs)

        for (src, dst), pairs in resolve_calls(calls, callables, classes, file_info).items():
            self._merge_rels("CALLS", src, dst, scoped(pairs))
        self._merge_rels("INHERITS", "Class", "Class", scoped(resolve_bases(bases, classes, file_info)))
        self._merge_rels("IMPORTS", "CodeFile", "CodeFile", scoped(resolve_imports(imports, modules, class_files)))
        self._merge_rels("HAS_METHOD", "Class", "Method", scoped(cross_file_methods(methods, class_files)))

    def counts(self) -> dict[str, int]:
        return {label: self._read(f"MATCH (n:{label}) RETURN count(n) AS c")[0]["c"] for label in LABELS}

    def codebases(self) -> list[dict[str, Any]]:
        nodes: dict[str, int] = {}
        files: dict[str, int] = {}
        for table in SCOPED_TABLES:
            for row in self._read(f"MATCH (n:{table}) WHERE n.codebase IS NOT NULL "
                                  "RETURN n.codebase AS cb, count(n) AS c"):
                nodes[row["cb"]] = nodes.get(row["cb"], 0) + row["c"]
                if table == "CodeFile":
                    files[row["cb"]] = row["c"]
        return [{"name": r["n"], "root": r["r"], "files": files.get(r["n"], 0), "nodes": nodes.get(r["n"], 0),
                 "last_ingest": r["t"]} for r in self._read(
                     "MATCH (c:CodeBase) RETURN c.name AS n, c.root AS r, c.ingested_at AS t ORDER BY n")]

    def fingerprint(self) -> str:
        return graph_fingerprint({uid(r["cb"], r["p"]): r["s"] for r in self._read(
            "MATCH (f:CodeFile) RETURN f.codebase AS cb, f.path AS p, f.sha AS s")})

    def transaction(self) -> AbstractContextManager[None]:
        """Neo4j writes commit per statement batch already: nothing to group."""
        return nullcontext()

    def atomic(self, work: Callable[[], T]) -> T:
        """Neo4j writes commit per statement batch already (and its memory is the server's): run `work`."""
        return work()

    def repair_unfinished(self) -> bool:
        """If the last ingest of this code base did not finish (its CodeBase node still carries the
        `unfinished` mark: mark_unfinished), remove every node of the code base, so that this ingest
        rebuilds it whole; the mark stays until this ingest's last statement. Why: Neo4j commits each
        statement batch, so a killed ingest leaves some files written with their new content hash and
        their edges missing, which a re-ingest would otherwise take for unchanged files."""
        if not self._read("MATCH (c:CodeBase {name: $cb}) WHERE c.unfinished IS NOT NULL RETURN c.name AS n",
                          {"cb": self.codebase}):
            return False
        for table in SCOPED_TABLES:
            self._write(f"MATCH (n:{table}) WHERE n.codebase = $cb DETACH DELETE n", {"cb": self.codebase})
        return True

    def mark_unfinished(self, root: str, job_id: str | None = None) -> None:
        """Mark the code base unfinished on its CodeBase node before the ingest's first write; the
        ingest's last statement (record_codebase) clears it. Readers refuse a marked code base (Neo4jSource)."""
        mark = json.dumps({"codebase": self.codebase, "root": root, "job_id": job_id,
                           "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        self._write("MERGE (c:CodeBase {name: $cb}) SET c.unfinished = $mark", {"cb": self.codebase, "mark": mark})

    def finished(self) -> None:
        """Nothing left to do: record_codebase, the ingest's last statement, cleared the mark."""

    def failed(self, repaired: bool) -> None:
        """The mark stays: with every statement committed on its own, any write may have landed."""

    def defer_checkpoint(self) -> None:
        """Nothing to defer: a Neo4j server checkpoints on its own schedule."""

    def close(self) -> None:
        try:
            if getattr(self, "driver", None) is not None:
                self.loop.run_until_complete(self.driver.close())
        finally:
            self.loop.close()


async def _consume(tx: Any, query: str, params: dict[str, Any]) -> None:
    result = await tx.run(query, params)
    await result.consume()


async def _fetch(tx: Any, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    result = await tx.run(query, params)
    return [record.data() async for record in result]
