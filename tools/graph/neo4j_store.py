"""Neo4j as a graph source (extraction) and, on request, an ingest target.

Uses the official async driver: reads in managed read transactions (`execute_read`),
writes in `execute_write`, every value as a query parameter, labels/properties only from
the validated mapping, a timeout on every connection and query. Results are paged by
element id (keyset pagination), so memory stays bounded on large graphs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from graphtune.tools.errors import (
    ConfigError,
    GraphError,
    GraphUnavailable,
    QueryFailed,
)
from graphtune.tools.graph.mapping import GraphMapping
from graphtune.tools.graph.records import CodeRecord

BATCH = 2000
EXPECTED = {"Function": ["docstring", "source", "signature"], "Method": ["docstring", "source", "signature"],
            "Class": ["docstring", "source"], "CodeFile": ["description"], "Pattern": ["description"]}


@contextmanager
def map_neo4j_errors(settings: Any) -> Iterator[None]:
    """Translate driver exceptions into the most specific GraphError (re-raised `from` the original)."""
    from neo4j import exceptions as ne

    try:
        yield
    except ne.AuthError as exc:
        raise GraphUnavailable(f"Neo4j rejected the credentials for user {settings.neo4j_username!r}: {exc.message}",
                               field="NEO4J_PASSWORD", hint="Check NEO4J_USERNAME / NEO4J_PASSWORD.") from exc
    except ne.ServiceUnavailable as exc:
        raise GraphUnavailable(f"Neo4j at {settings.neo4j_uri} is unreachable: {exc}", field="NEO4J_URI",
                               hint="Check that the server runs and NEO4J_URI (e.g. neo4j://localhost:7687) is right.") from exc
    except ne.ClientError as exc:
        if "DatabaseNotFound" in (exc.code or ""):
            raise GraphUnavailable(f"Neo4j has no database {settings.neo4j_database!r}.", field="NEO4J_DATABASE",
                                   hint="Set NEO4J_DATABASE to an existing database (SHOW DATABASES).") from exc
        raise QueryFailed(f"Neo4j refused the query: {exc.message}") from exc
    except (asyncio.TimeoutError, TimeoutError) as exc:
        raise QueryFailed(f"Neo4j did not answer within {settings.neo4j_timeout_s}s.",
                          hint="Raise GRAPHTUNE_NEO4J_TIMEOUT_S or check the server load.") from exc
    except ne.Neo4jError as exc:
        raise QueryFailed(f"Neo4j error: {exc}") from exc
    except ne.DriverError as exc:
        raise GraphError(f"Neo4j driver error: {exc}") from exc


def check_neo4j_configured(settings: Any, field: str, asked: bool) -> None:
    """Before queueing work that reads Neo4j: NEO4J_URI must be set (a cheap check; no connection).
    `asked`: the client passed `field`='neo4j' (else it is the server's GRAPHTUNE_GRAPH_BACKEND)."""
    if not settings.neo4j_uri:
        why = f"`{field}`='neo4j'" if asked else "the server's graph store is neo4j (GRAPHTUNE_GRAPH_BACKEND)"
        raise ConfigError(f"{why} but NEO4J_URI is not set, so there is no Neo4j server to read.",
                          field=field, hint="Set NEO4J_URI (and NEO4J_USERNAME / NEO4J_PASSWORD) in the server's "
                          "environment, e.g. NEO4J_URI=neo4j://localhost:7687, or use the embedded store "
                          f"({field}='embedded').")


def make_driver(settings: Any):  # noqa: ANN201 (neo4j.AsyncDriver)
    from neo4j import AsyncGraphDatabase

    if not settings.neo4j_uri:
        raise ConfigError("NEO4J_URI is not set.", field="NEO4J_URI", hint="e.g. export NEO4J_URI=neo4j://localhost:7687")
    password = settings.neo4j_password.get_secret_value() if settings.neo4j_password else ""
    return AsyncGraphDatabase.driver(settings.neo4j_uri, auth=(settings.neo4j_username, password),
                                     connection_timeout=settings.neo4j_timeout_s,
                                     connection_acquisition_timeout=settings.neo4j_timeout_s,
                                     max_transaction_retry_time=settings.neo4j_timeout_s)


def record_query(node_type: str, m: GraphMapping, by_codebase: bool = False) -> str:
    """Cypher for one page of records of `node_type`, built only from validated identifiers;
    `by_codebase` keeps only nodes whose code base is in `$codebases`."""
    n, p, r = m.label(node_type), m.prop, m.rel
    scope = f"AND n.{p('codebase')} IN $codebases " if by_codebase else ""
    page = f"MATCH (n:{n}) WHERE elementId(n) > $after {scope}WITH n ORDER BY elementId(n) LIMIT $batch "
    if node_type in ("Function", "Method"):
        return (page + f"OPTIONAL MATCH (n)-[:{r('CALLS')}]->(t) WITH n, collect(t.{p('key')}) AS calls "
                f"OPTIONAL MATCH (c)-[:{r('CALLS')}]->(n) WITH n, calls, collect(c.{p('key')}) AS called_by "
                f"OPTIONAL MATCH (k)-[:{r('HAS_METHOD')}]->(n) "
                f"RETURN elementId(n) AS eid, n.{p('key')} AS key, n.{p('name')} AS name, n.{p('file_path')} AS file_path, "
                f"n.{p('docstring')} AS docstring, n.{p('signature')} AS signature, n.{p('parameters')} AS parameters, "
                f"n.{p('return_type')} AS return_type, n.{p('source')} AS source, k.{p('key')} AS class_name, "
                f"n.{p('codebase')} AS codebase, calls, called_by ORDER BY eid")
    if node_type == "Class":
        return (page + f"OPTIONAL MATCH (n)-[:{r('HAS_METHOD')}]->(x) WITH n, collect(x.{p('name')}) AS members "
                f"RETURN elementId(n) AS eid, n.{p('key')} AS key, n.{p('name')} AS name, n.{p('file_path')} AS file_path, "
                f"n.{p('docstring')} AS docstring, n.{p('source')} AS source, n.{p('base_classes')} AS base_classes, "
                f"n.{p('codebase')} AS codebase, members ORDER BY eid")
    if node_type == "CodeFile":
        return (page + f"OPTIONAL MATCH (n)-[:{r('DEFINES')}]->(x) WITH n, collect(x.{p('name')}) AS members "
                f"RETURN elementId(n) AS eid, n.{p('path')} AS key, n.{p('module_name')} AS name, "
                f"n.{p('description')} AS description, n.{p('codebase')} AS codebase, members ORDER BY eid")
    return (page + f"OPTIONAL MATCH (x)-[:{r('IMPLEMENTS_PATTERN')}]->(n) WITH n, collect(x.{p('key')})[..20] AS used_by "
            f"RETURN elementId(n) AS eid, n.{p('name')} AS key, n.{p('name')} AS name, n.{p('description')} AS description, "
            f"n.{p('category')} AS category, n.{p('example')} AS example, n.{p('best_practices')} AS best_practices, "
            f"n.{p('codebase')} AS codebase, used_by ORDER BY eid")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [str(value)]


def to_record(node_type: str, row: dict[str, Any]) -> CodeRecord:
    fields = {k: v for k, v in row.items() if k != "eid"}
    fields["codebase"] = "" if fields.get("codebase") is None else str(fields["codebase"])
    for key in ("parameters", "base_classes", "members", "calls", "called_by", "used_by"):
        if key in fields:
            fields[key] = _as_list(fields[key])
    text = {k: ("" if v is None else v) for k, v in fields.items() if not isinstance(v, list)}
    return CodeRecord(node_type=node_type, **{**text, **{k: v for k, v in fields.items() if isinstance(v, list)}})


class Neo4jSource:
    """Sync facade (the extraction job is sync) over the async driver, on a private event loop."""

    def __init__(self, settings: Any, mapping: GraphMapping | None = None, codebases: list[str] | None = None) -> None:
        self.settings, self.mapping = settings, mapping or GraphMapping()
        self.missing: Counter[str] = Counter()
        self.loop = asyncio.new_event_loop()
        self.driver = make_driver(settings)
        self._run(self._verify())
        self.codebases = None
        try:
            self._refuse_unfinished(codebases)
            if codebases is not None:
                from graphtune.tools.graph.selection import check_codebases

                self.codebases = check_codebases(codebases, self.known_codebases())
        except BaseException:
            self.close()
            raise

    def _refuse_unfinished(self, codebases: list[str] | None) -> None:
        """Refuse a selected code base (all of them when None) whose last graphtune ingest did not
        finish: its CodeBase node still carries the mark (neo4j_writer.mark_unfinished)."""
        from graphtune.tools.graph.unfinished import refuse_unfinished

        rows = self._run(self._read("MATCH (c:CodeBase) WHERE c.unfinished IS NOT NULL "
                                    "RETURN c.name AS n, c.unfinished AS u", {}))
        left = []
        for row in rows:
            if codebases is None or row["n"] in codebases:
                try:
                    left.append({"codebase": row["n"], **json.loads(row["u"])})
                except (TypeError, ValueError):  # a mark written by hand or cut short: still a mark
                    left.append({"codebase": row["n"]})
        refuse_unfinished(sorted(left, key=lambda r: r["codebase"]), write_to="neo4j")

    def _scope(self) -> dict[str, Any]:
        return {"codebases": self.codebases} if self.codebases is not None else {}

    def known_codebases(self) -> list[str]:
        m = self.mapping
        rows = self._run(self._read(f"MATCH (n:{m.label('CodeFile')}) WHERE n.{m.prop('codebase')} IS NOT NULL "
                                    f"RETURN DISTINCT n.{m.prop('codebase')} AS c", {}))
        return sorted(str(row["c"]) for row in rows)

    def _run(self, coro: Any) -> Any:
        with map_neo4j_errors(self.settings):
            return self.loop.run_until_complete(asyncio.wait_for(coro, self.settings.neo4j_timeout_s * 6))

    async def _verify(self) -> None:
        await self.driver.verify_connectivity()

    async def _read(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        async def work(tx: Any) -> list[dict[str, Any]]:
            result = await tx.run(query, params, timeout=self.settings.neo4j_timeout_s)
            return [record.data() async for record in result]

        async with self.driver.session(database=self.settings.neo4j_database) as session:
            return await session.execute_read(work)

    def iter_records(self, node_type: str) -> Iterator[CodeRecord]:
        if node_type == "Pattern":  # one Pattern node per code base: one record per pattern name
            from graphtune.tools.graph.selection import merge_patterns

            yield from merge_patterns(self._pages(node_type))
        else:
            yield from self._pages(node_type)

    def _pages(self, node_type: str) -> Iterator[CodeRecord]:
        query, after = record_query(node_type, self.mapping, self.codebases is not None), ""
        while True:
            rows = self._run(self._read(query, {"after": after, "batch": BATCH, **self._scope()}))
            for row in rows:
                for prop in EXPECTED[node_type]:
                    if row.get(prop) is None:
                        self.missing[f"{node_type}.{self.mapping.properties.get(prop, prop)}"] += 1
                yield to_record(node_type, row)
            if len(rows) < BATCH:
                return
            after = rows[-1]["eid"]

    def enrich(self, records: list[CodeRecord]) -> None:
        """Nothing to add: the paged queries already collect calls and callers."""

    def count(self, node_type: str) -> int:
        scope = f"WHERE n.{self.mapping.prop('codebase')} IN $codebases " if self.codebases is not None else ""
        rows = self._run(self._read(f"MATCH (n:{self.mapping.label(node_type)}) {scope}RETURN count(n) AS c",
                                    self._scope()))
        return rows[0]["c"]

    def fingerprint(self) -> str:
        counts = {t: self.count(t) for t in EXPECTED} | ({"codebases": self.codebases} if self.codebases else {})
        return hashlib.sha256(repr(sorted(counts.items())).encode()).hexdigest()[:16]

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.driver.close())
        finally:
            self.loop.close()


async def check_neo4j(settings: Any) -> Any:
    """Connect and authenticate within the timeout; never hangs."""
    import anyio
    from graphtune.tools.checks import Check
    from graphtune.tools.errors import GraphtuneError

    try:
        driver = make_driver(settings)
        try:
            with map_neo4j_errors(settings):
                with anyio.fail_after(settings.neo4j_timeout_s + 1):
                    await driver.verify_connectivity()
        finally:
            await driver.close()
    except GraphtuneError as exc:
        return Check(name="graph:neo4j", ok=False, detail=exc.message, fix=exc.hint)
    except TimeoutError:
        return Check(name="graph:neo4j", ok=False, detail=f"no answer from {settings.neo4j_uri} within "
                     f"{settings.neo4j_timeout_s}s", fix="Check NEO4J_URI and that the server runs.")
    return Check(name="graph:neo4j", ok=True, detail=f"connected to {settings.neo4j_uri} as {settings.neo4j_username}")
