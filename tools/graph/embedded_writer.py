"""Writes parsed files into the embedded store and recomputes cross-file edges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphtune.tools.graph.embedded import EmbeddedGraph, decode_list
from graphtune.tools.graph.python_parser import FileGraph
from graphtune.tools.graph.resolve import resolve_bases, resolve_calls, resolve_imports


class EmbeddedWriter:
    def __init__(self, graph_dir: Path, scratch: Path) -> None:
        self.graph = EmbeddedGraph(graph_dir, read_only=False)
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

    def replace_files(self, delete: list[str], graphs: list[FileGraph], patterns: dict[str, dict[str, str]]) -> None:
        g, s = self.graph, self.scratch
        g.delete_files(delete)
        g.copy_nodes("CodeFile", ({"path": f.path, "module_name": f.module_name, "description": f.description,
                                   "language": "python", "sha": f.sha, "lines": f.lines, "aliases": f.aliases,
                                   "imports": sorted(set(f.imports))} for f in graphs), s)
        g.copy_nodes("Class", (c for f in graphs for c in f.classes), s)
        calls_by_owner: dict[str, list[str]] = {}
        for f in graphs:
            for caller, raw, _cls in f.calls:
                calls_by_owner.setdefault(caller, []).append(raw)
        for table, attr in (("Function", "functions"), ("Method", "methods")):
            g.copy_nodes(table, ({**r, "raw_calls": calls_by_owner.get(r["qualified_name"], [])}
                                 for f in graphs for r in getattr(f, attr)), s)
        g.copy_nodes("Parameter", ({**p, "file_path": f.path} for f in graphs for p in f.parameters), s)
        self._ensure_patterns(graphs, patterns)
        g.copy_rels("DEFINES", "CodeFile", "Class", ((f.path, c["qualified_name"]) for f in graphs for c in f.classes
                                                     if c["qualified_name"].count(".") == f.module_name.count(".") + 1), s)
        g.copy_rels("DEFINES", "CodeFile", "Function",
                    ((f.path, r["qualified_name"]) for f in graphs for r in f.functions), s)
        g.copy_rels("HAS_METHOD", "Class", "Method",
                    ((r["class_name"], r["qualified_name"]) for f in graphs for r in f.methods), s)
        owners = {r["qualified_name"]: "Method" for f in graphs for r in f.methods}
        for label in ("Function", "Method"):
            g.copy_rels("HAS_PARAMETER", label, "Parameter", ((p["owner"], p["id"]) for f in graphs for p in f.parameters
                                                               if owners.get(p["owner"], "Function") == label), s)
        for label in ("Class", "Function", "Method"):
            g.copy_rels("IMPLEMENTS_PATTERN", label, "Pattern",
                        ((qn, name) for f in graphs for qn, lab, name in f.patterns if lab == label), s)

    def _ensure_patterns(self, graphs: list[FileGraph], patterns: dict[str, dict[str, str]]) -> None:
        existing = {row[0] for row in self.graph.rows("MATCH (p:Pattern) RETURN p.name")}
        examples: dict[str, str] = {}
        for f in graphs:
            for qn, _label, name in f.patterns:
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
