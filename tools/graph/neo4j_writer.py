"""Write graphtune's schema into a user's Neo4j (ingest with `write_to="neo4j"`).

Batched `UNWIND $rows AS r MERGE ...` in managed write transactions; idempotent (MERGE on
each label's key, uniqueness constraints created first); cross-file edges recomputed with
the same resolver as the embedded store.
"""

from __future__ import annotations

import asyncio
from typing import Any

from graphtune.tools.graph.csv_rows import NODE_KEYS, REL_KEYS, node_rows, rel_pairs
from graphtune.tools.graph.neo4j_store import make_driver, map_neo4j_errors
from graphtune.tools.graph.python_parser import FileGraph
from graphtune.tools.graph.resolve import resolve_bases, resolve_calls, resolve_imports
from graphtune.tools.graph.schema import PRIMARY_KEYS, graph_fingerprint

BATCH = 1000
LABELS = ("CodeFile", "Class", "Function", "Method", "Parameter", "Pattern")


class Neo4jWriter:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.driver = make_driver(settings)
        for label in LABELS:
            self._write(f"CREATE CONSTRAINT IF NOT EXISTS FOR (n:{label}) REQUIRE n.{PRIMARY_KEYS[label]} IS UNIQUE", {})

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
        key = PRIMARY_KEYS[label]
        for i in range(0, len(rows), BATCH):
            self._write(f"UNWIND $rows AS r MERGE (n:{label} {{{key}: r.{key}}}) SET n += r",
                        {"rows": rows[i:i + BATCH]})

    def _merge_rels(self, rel: str, src: str, dst: str, pairs: list[tuple[str, str]]) -> None:
        rows = [{"a": a, "b": b} for a, b in pairs]
        for i in range(0, len(rows), BATCH):
            self._write(f"UNWIND $rows AS r MATCH (a:{src} {{{PRIMARY_KEYS[src]}: r.a}}) "
                        f"MATCH (b:{dst} {{{PRIMARY_KEYS[dst]}: r.b}}) MERGE (a)-[:{rel}]->(b)", {"rows": rows[i:i + BATCH]})

    def file_shas(self) -> dict[str, str]:
        return {r["path"]: r["sha"] for r in self._read("MATCH (f:CodeFile) RETURN f.path AS path, f.sha AS sha")}

    def delete_files(self, delete: list[str]) -> None:
        if delete:
            self._write("MATCH (n) WHERE (n:Class OR n:Function OR n:Method OR n:Parameter) AND n.file_path IN $p "
                        "DETACH DELETE n", {"p": delete})
            self._write("MATCH (n:CodeFile) WHERE n.path IN $p DETACH DELETE n", {"p": delete})

    def load(self, graphs: list[FileGraph], patterns: dict[str, dict[str, str]]) -> None:
        """MERGE one batch of parsed files: the same rows and pairs the embedded store loads."""
        if not graphs:
            return
        import json

        rows = [node_rows(f) for f in graphs]
        for table in NODE_KEYS:
            batch = [dict(row) for per_file in rows for row in per_file[table]]
            if table == "CodeFile":  # Neo4j properties cannot hold maps
                for row in batch:
                    row["aliases"] = json.dumps(row["aliases"])
            self._merge_nodes(table, batch)
        used = sorted({name for f in graphs for _qn, _l, name in f.patterns})
        self._merge_nodes("Pattern", [{"name": n, **patterns[n]} for n in used])
        pairs = [rel_pairs(f) for f in graphs]
        for key in REL_KEYS:
            self._merge_rels(*key, [pair for per_file in pairs for pair in per_file[key]])

    def rebuild_derived_edges(self) -> None:
        import json

        for rel in ("CALLS", "INHERITS", "IMPORTS"):
            self._write(f"MATCH ()-[r:{rel}]->() DELETE r", {})
        files = self._read("MATCH (f:CodeFile) RETURN f.path AS p, f.module_name AS m, f.aliases AS a, f.imports AS i")
        file_info = {f["p"]: (f["m"], json.loads(f["a"] or "{}")) for f in files}
        modules = {f["m"]: f["p"] for f in files}
        imports = [(f["p"], name) for f in files for name in (f["i"] or [])]
        cls_rows = self._read("MATCH (c:Class) RETURN c.qualified_name AS q, c.file_path AS p, c.base_classes AS b")
        classes = {c["q"] for c in cls_rows}
        bases = [(c["q"], b, c["p"]) for c in cls_rows for b in (c["b"] or [])]
        callables, calls = {}, []
        for label in ("Function", "Method"):
            for row in self._read(f"MATCH (n:{label}) RETURN n.qualified_name AS q, n.file_path AS p, "
                                  "n.raw_calls AS c, n.class_name AS k"):
                callables[row["q"]] = label
                calls += [(row["q"], raw, row["k"], row["p"]) for raw in (row["c"] or [])]
        for (src, dst), pairs in resolve_calls(calls, callables, classes, file_info).items():
            self._merge_rels("CALLS", src, dst, sorted(pairs))
        self._merge_rels("INHERITS", "Class", "Class", sorted(resolve_bases(bases, classes, file_info)))
        self._merge_rels("IMPORTS", "CodeFile", "CodeFile", sorted(resolve_imports(imports, modules)))

    def counts(self) -> dict[str, int]:
        return {label: self._read(f"MATCH (n:{label}) RETURN count(n) AS c")[0]["c"] for label in LABELS}

    def fingerprint(self) -> str:
        return graph_fingerprint(self.file_shas())

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.driver.close())
        finally:
            self.loop.close()


async def _consume(tx: Any, query: str, params: dict[str, Any]) -> None:
    result = await tx.run(query, params)
    await result.consume()


async def _fetch(tx: Any, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    result = await tx.run(query, params)
    return [record.data() async for record in result]
