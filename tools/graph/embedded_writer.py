"""Writes parsed files of one code base into the embedded store and recomputes its cross-file edges."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

from graphtune.tools.graph.csv_rows import (
    NODE_KEYS,
    REL_KEYS,
    PreparedFile,
    join_chunks,
)
from graphtune.tools.graph.embedded import EmbeddedGraph, decode_list
from graphtune.tools.graph.embedded_pool import writer_buffer_pool
from graphtune.tools.graph.resolve import (
    cross_file_methods,
    foreign_bases,
    resolve_bases,
    resolve_calls,
    resolve_imports,
)
from graphtune.tools.graph import unfinished
from graphtune.tools.graph.schema import DERIVED_RELS, SCOPED_TABLES, uid


T = TypeVar("T")


class EmbeddedWriter:
    """Every read and write is scoped to `codebase`: other code bases in the graph are never touched."""

    def __init__(self, graph_dir: Path, scratch: Path, codebase: str, lock_wait_s: float = 0.0,
                 source_bytes: int = 0) -> None:
        """`source_bytes`: the source this ingest will parse, which sizes the store's buffer pool."""
        pool = writer_buffer_pool(graph_dir, source_bytes)
        self.graph = EmbeddedGraph(graph_dir, read_only=False, lock_wait_s=lock_wait_s, buffer_pool_bytes=pool)
        self.graph_dir = graph_dir
        self._commits_at_mark: int | None = None  # None: this ingest wrote no marker
        self.scratch = scratch
        self.codebase = codebase
        scratch.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        self.graph.close()

    def repair_unfinished(self) -> bool:
        """If the last ingest of this code base did not finish (its marker is there: graph/unfinished.py),
        remove everything the code base holds, so that this ingest rebuilds it whole; the marker stays
        until this ingest finishes. Returns whether it did. Before the ingest reads what is stored."""
        if unfinished.read(self.graph_dir, self.codebase) is None:
            return False
        self.graph.atomic(self._remove_codebase)
        return True

    def mark_unfinished(self, root: str, job_id: str | None = None) -> None:
        """Mark the code base unfinished before the ingest's first write (graph/unfinished.py). The
        marker is synced on a thread, and the first commit waits for it (EmbeddedGraph.commit_after)."""
        self.graph.commit_after(unfinished.sync, unfinished.mark(self.graph_dir, self.codebase, root, job_id))
        self._commits_at_mark = self.graph.commits

    def _remove_codebase(self) -> None:
        """Every node of this code base with its edges, and its CodeBase node: what a killed ingest left
        cannot be told apart from what it kept (COPYed rows lost, WAL-logged deletions kept)."""
        params = {"cb": self.codebase}
        for table in SCOPED_TABLES:
            self.graph.execute(f"MATCH (n:{table}) WHERE n.codebase = $cb DETACH DELETE n", params)
        self.graph.execute("MATCH (c:CodeBase) WHERE c.name = $cb DELETE c", params)

    def finished(self) -> None:
        """The ingest succeeded and the store is closed (its last commit checkpointed): drop the marker."""
        unfinished.clear(self.graph_dir, self.codebase)

    def failed(self, repaired: bool) -> None:
        """The ingest failed (or was cancelled) and the store is closed: its marker stays if anything was
        committed since mark_unfinished() or the ingest emptied the code base (`repaired`), as the code
        base may be partial; else it is as it was, and the marker is dropped."""
        if not repaired and self._commits_at_mark is not None and self.graph.commits == self._commits_at_mark:
            unfinished.clear(self.graph_dir, self.codebase)

    def defer_checkpoint(self) -> None:
        """The next commits leave the checkpoint for later (see EmbeddedGraph.defer_checkpoint)."""
        self.graph.defer_checkpoint()

    def transaction(self) -> AbstractContextManager[None]:
        """One transaction (one commit) around several steps; the steps' own transactions join it."""
        return self.graph.transaction()

    def atomic(self, work: Callable[[], T]) -> T:
        """`work` as one transaction, run once more on the default buffer pool if the sized one
        proves too small (EmbeddedGraph.atomic): the ingest's writes go through here."""
        return self.graph.atomic(work)

    def codebase_root(self) -> str | None:
        rows = list(self.graph.rows("MATCH (c:CodeBase) WHERE c.name = $cb RETURN c.root", {"cb": self.codebase}))
        return rows[0][0] if rows else None

    def file_shas(self) -> dict[str, str]:
        return self.graph.file_shas(self.codebase)

    def counts(self) -> dict[str, int]:
        return self.graph.counts()

    def codebases(self) -> list[dict[str, Any]]:
        return self.graph.codebases()

    def fingerprint(self) -> str:
        return self.graph.fingerprint()

    def qualified_names(self) -> set[str]:
        """Qualified names of this code base's classes, functions and methods (unique per code base)."""
        return {row[0] for label in ("Class", "Function", "Method") for row in self.graph.rows(
            f"MATCH (n:{label}) WHERE n.codebase = $cb RETURN n.qualified_name", {"cb": self.codebase})}

    def delete_files(self, paths: list[str]) -> None:
        """One transaction for the five DELETEs (one commit, and atomic() on a short pool)."""
        if paths:
            self.graph.atomic(lambda: self.graph.delete_files(self.codebase, paths))

    def load(self, files: list[PreparedFile], patterns: dict[str, dict[str, str]]) -> None:
        """Bulk-load one batch of prepared files (CSV built in the parser processes)."""
        if files:
            self.graph.atomic(lambda: self._load(files, patterns))

    def _load(self, files: list[PreparedFile], patterns: dict[str, dict[str, str]]) -> None:
        g, s = self.graph, self.scratch
        for table in NODE_KEYS:
            g.copy_csv(table, join_chunks(files, table), s)
        self._ensure_patterns(files, patterns)
        for key in REL_KEYS:
            g.copy_csv(key, join_chunks(files, key), s)

    def _ensure_patterns(self, files: list[PreparedFile], patterns: dict[str, dict[str, str]]) -> None:
        existing = {row[0] for row in self.graph.rows("MATCH (p:Pattern) WHERE p.codebase = $cb RETURN p.name",
                                                      {"cb": self.codebase})}
        examples: dict[str, str] = {}
        for f in files:
            for name, qn in f.patterns:
                examples.setdefault(name, qn)
        new = [{"uid": uid(self.codebase, n), "codebase": self.codebase, "name": n, "example": examples[n],
                **patterns[n]} for n in sorted(examples) if n not in existing]
        self.graph.copy_nodes("Pattern", new, self.scratch)

    def prune_patterns(self) -> None:
        """Pattern nodes are derived: drop those no node of this code base implements any more,
        and point a surviving pattern's `example` at a node that still exists."""
        params = {"cb": self.codebase}
        self.graph.execute("MATCH (p:Pattern) WHERE p.codebase = $cb "
                           "AND NOT EXISTS { MATCH (p)<-[:IMPLEMENTS_PATTERN]-() } DELETE p", params)
        users: dict[str, tuple[str, set[str]]] = {}
        for key, example, qn in self.graph.rows("MATCH (x)-[:IMPLEMENTS_PATTERN]->(p:Pattern) WHERE p.codebase = $cb "
                                                "RETURN p.uid, p.example, x.qualified_name", params):
            users.setdefault(key, (example, set()))[1].add(qn)
        for key, (example, names) in sorted(users.items()):
            if example not in names:
                self.graph.execute("MATCH (p:Pattern) WHERE p.uid = $uid SET p.example = $example",
                                   {"uid": key, "example": min(names)})

    def record_codebase(self, root: str) -> None:
        """Create or update this code base's CodeBase node (root, time of this ingest)."""
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.graph.execute("MERGE (c:CodeBase {name: $cb}) SET c.root = $root, c.ingested_at = $at",
                           {"cb": self.codebase, "root": root, "at": at})

    def rebuild_derived_edges(self, fresh: bool = False) -> None:
        """Recompute CALLS / INHERITS / IMPORTS of this code base, resolving names only against
        its own nodes (edges never cross code bases); one transaction (see EmbeddedGraph.transaction).
        `fresh`: the code base had no stored file before this ingest, so it has no derived edge to
        delete (each of the four DELETE scans costs 1-3 ms even when it finds nothing)."""
        self.graph.atomic(lambda: self._rebuild(fresh))

    def _rebuild(self, fresh: bool) -> None:
        if not fresh:
            self._delete_derived_edges()
        self._rebuild_derived_edges()

    def _delete_derived_edges(self) -> None:
        params = {"cb": self.codebase}
        for rel in DERIVED_RELS:
            self.graph.execute(f"MATCH (a)-[r:{rel}]->() WHERE a.codebase = $cb DELETE r", params)
        self.graph.execute("MATCH (c:Class)-[r:HAS_METHOD]->(m:Method) WHERE c.codebase = $cb "
                           "AND c.file_path <> m.file_path DELETE r", params)

    def _rebuild_derived_edges(self) -> None:
        g, s, cb = self.graph, self.scratch, self.codebase
        params = {"cb": cb}
        file_info, modules, imports, inherits = {}, {}, [], []
        for path, module, aliases, imported, extra in g.rows(
                "MATCH (f:CodeFile) WHERE f.codebase = $cb RETURN f.path, f.module_name, f.aliases, f.imports, "
                "f.inherits", params):
            file_info[path] = (module, _json(aliases))
            modules.setdefault(module, []).append(path)
            imports += [(path, name) for name in decode_list(imported)]
            inherits.append((path, decode_list(extra)))
        class_files, bases = {}, foreign_bases(inherits)
        for qn, path, raw_bases in g.rows(
                "MATCH (c:Class) WHERE c.codebase = $cb RETURN c.qualified_name, c.file_path, c.base_classes", params):
            class_files[qn] = path
            bases += [(qn, raw, path) for raw in decode_list(raw_bases)]
        classes = set(class_files)
        callables, calls, methods = self._callables()

        def scoped(pairs: set[tuple[str, str]]) -> list[tuple[str, str]]:
            return sorted((uid(cb, a), uid(cb, b)) for a, b in pairs)

        for (src, dst), pairs in resolve_calls(calls, callables, classes, file_info).items():
            g.copy_rels("CALLS", src, dst, scoped(pairs), s)
        g.copy_rels("INHERITS", "Class", "Class", scoped(resolve_bases(bases, classes, file_info)), s)
        g.copy_rels("IMPORTS", "CodeFile", "CodeFile", scoped(resolve_imports(imports, modules, class_files)), s)
        g.copy_rels("HAS_METHOD", "Class", "Method", scoped(cross_file_methods(methods, class_files)), s)

    def _callables(self) -> tuple[dict[str, str], list[tuple[str, str, str | None, str]], list[tuple[str, str, str]]]:
        """Functions and methods of this code base: qn -> label, raw calls, (method, class, path)."""
        callables: dict[str, str] = {}
        calls: list[tuple[str, str, str | None, str]] = []
        methods: list[tuple[str, str, str]] = []
        for label in ("Function", "Method"):
            owner = "n.class_name" if label == "Method" else "''"
            query = f"MATCH (n:{label}) WHERE n.codebase = $cb RETURN n.qualified_name, n.file_path, n.raw_calls, {owner}"
            for qn, path, raw_calls, cls in self.graph.rows(query, {"cb": self.codebase}):
                callables[qn] = label
                calls += [(qn, raw, cls or None, path) for raw in decode_list(raw_calls)]
                if cls:
                    methods.append((qn, cls, path))
        return callables, calls, methods


def _json(text: str | None) -> Any:
    import json

    return json.loads(text) if text else {}
