"""Writes parsed files into the embedded store and recomputes cross-file edges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphtune.tools.graph.csv_rows import (
    NODE_KEYS,
    REL_KEYS,
    PreparedFile,
    join_chunks,
)
from graphtune.tools.graph.embedded import EmbeddedGraph, decode_list
from graphtune.tools.graph.resolve import resolve_bases, resolve_calls, resolve_imports


class EmbeddedWriter:
    def __init__(self, graph_dir: Path, scratch: Path, lock_wait_s: float = 0.0) -> None:
        self.graph = EmbeddedGraph(graph_dir, read_only=False, lock_wait_s=lock_wait_s)
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        self.graph.close()

    def file_shas(self) -> dict[str, str]:
        return self.graph.file_shas()

    def counts(self) -> dict[str, int]:
        return self.graph.counts()

    def fingerprint(self) -> str:
        return self.graph.fingerprint()

    def delete_files(self, paths: list[str]) -> None:
        self.graph.delete_files(paths)

    def load(self, files: list[PreparedFile], patterns: dict[str, dict[str, str]]) -> None:
        """Bulk-load one batch of prepared files (CSV built in the parser processes)."""
        if not files:
            return
        g, s = self.graph, self.scratch
        for table in NODE_KEYS:
            g.copy_csv(table, join_chunks(files, table), s)
        self._ensure_patterns(files, patterns)
        for key in REL_KEYS:
            g.copy_csv(key, join_chunks(files, key), s)

    def _ensure_patterns(self, files: list[PreparedFile], patterns: dict[str, dict[str, str]]) -> None:
        existing = {row[0] for row in self.graph.rows("MATCH (p:Pattern) RETURN p.name")}
        examples: dict[str, str] = {}
        for f in files:
            for name, qn in f.patterns:
                examples.setdefault(name, qn)
        new = [{"name": n, "example": examples[n], **patterns[n]} for n in sorted(examples) if n not in existing]
        self.graph.copy_nodes("Pattern", new, self.scratch)

    def rebuild_derived_edges(self) -> None:
        g, s = self.graph, self.scratch
        for rel in ("CALLS", "INHERITS", "IMPORTS"):
            g.execute(f"MATCH ()-[r:{rel}]->() DELETE r")
        file_info, modules, imports = {}, {}, []
        for path, module, aliases, imported in g.rows("MATCH (f:CodeFile) RETURN f.path, f.module_name, f.aliases, f.imports"):
            file_info[path] = (module, _json(aliases))
            modules[module] = path
            imports += [(path, name) for name in decode_list(imported)]
        classes, bases = set(), []
        for qn, path, raw_bases in g.rows("MATCH (c:Class) RETURN c.qualified_name, c.file_path, c.base_classes"):
            classes.add(qn)
            bases += [(qn, raw, path) for raw in decode_list(raw_bases)]
        callables: dict[str, str] = {}
        calls: list[tuple[str, str, str | None, str]] = []
        for label in ("Function", "Method"):
            owner = "n.class_name" if label == "Method" else "''"
            for qn, path, raw_calls, cls in g.rows(
                    f"MATCH (n:{label}) RETURN n.qualified_name, n.file_path, n.raw_calls, {owner}"):
                callables[qn] = label
                calls += [(qn, raw, cls or None, path) for raw in decode_list(raw_calls)]
        for (src, dst), pairs in resolve_calls(calls, callables, classes, file_info).items():
            g.copy_rels("CALLS", src, dst, sorted(pairs), s)
        g.copy_rels("INHERITS", "Class", "Class", sorted(resolve_bases(bases, classes, file_info)), s)
        g.copy_rels("IMPORTS", "CodeFile", "CodeFile", sorted(resolve_imports(imports, modules)), s)


def _json(text: str | None) -> Any:
    import json

    return json.loads(text) if text else {}
