"""Ingest a Python code base into the graph (the `ingest` job kind).

Incremental and idempotent: a file whose content hash is unchanged is skipped; a changed
file's old nodes are removed before its new ones are loaded; files gone from disk are
removed. Cross-file edges (CALLS, INHERITS, IMPORTS) are recomputed for the whole graph
from raw names stored on the nodes, so they stay right when only some files change.
Files that fail to parse are reported and skipped; the job still succeeds.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

from pydantic import BaseModel, Field

from graphtune.tools.errors import ConfigError
from graphtune.tools.graph.csv_rows import PreparedFile, prepare
from graphtune.tools.graph.discovery import SourceFile, discover, resolve_root
from graphtune.tools.graph.patterns import PATTERNS
from graphtune.tools.graph.python_parser import FileGraph, parse_file, sha_of
from graphtune.tools.job_context import JobContext

MAX_REPORTED_FAILURES = 50


class IngestParams(BaseModel):
    """Validated parameters of an ingest job (stored in the job row)."""

    path: str | None = Field(None, description="Folder (or .py file) to ingest.")
    package: str | None = Field(None, description="Installed package to ingest by import name, e.g. 'json'.")
    exclude: list[str] = Field(default_factory=list, description="Glob patterns of relative paths to skip.")
    write_to: str = Field("embedded", pattern="^(embedded|neo4j)$", description="Which graph store receives it.")
    max_file_bytes: int = Field(2_000_000, ge=1_000, le=50_000_000, description="Larger files are skipped.")
    workers: int = Field(0, ge=0, le=64, description="Parser processes; 0 = one per CPU core.")


Parsed = FileGraph | PreparedFile


def _parse_one(item: SourceFile, prepared: bool = True) -> Parsed | tuple[str, str]:
    """Parse one file; for the embedded store also format its CSV rows here (in the worker)."""
    try:
        with open(item.abs_path, "rb") as handle:
            data = handle.read()
        graph = parse_file(item.rel_path, item.module_name, data, is_package=item.is_package)
    except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError, OSError) as exc:
        return item.rel_path, f"{type(exc).__name__}: {exc}"
    return prepare(graph) if prepared else graph


def _parse_all(files: list[SourceFile], workers: int, ctx: JobContext | None, prepared: bool) -> list[Parsed | tuple[str, str]]:
    workers = workers or os.cpu_count() or 1
    results: list[Parsed | tuple[str, str]] = []
    parse = partial(_parse_one, prepared=prepared)
    if workers == 1 or len(files) < 64:
        for i, item in enumerate(files):
            results.append(parse(item))
            if ctx and i % 50 == 0:
                ctx.progress(i, len(files), "files", "parsing")
        return results
    import multiprocessing

    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        for i, result in enumerate(pool.map(parse, files, chunksize=16)):
            results.append(result)
            if ctx and i % 50 == 0:
                ctx.progress(i, len(files), "files", "parsing")
    return results


def plan_changes(
    files: list[SourceFile], known: dict[str, str], root_prefix: str
) -> tuple[list[SourceFile], list[str], list[str], int]:
    """Files to parse, stored files gone from disk, stored files changed, count unchanged (by content hash)."""
    to_parse, unchanged = [], 0
    on_disk = set()
    for item in files:
        on_disk.add(item.rel_path)
        stored = known.get(item.rel_path)
        if stored is not None:
            with open(item.abs_path, "rb") as handle:
                if sha_of(handle.read()) == stored:
                    unchanged += 1
                    continue
        to_parse.append(item)
    gone = [p for p in known if p.startswith(root_prefix) and p not in on_disk]
    changed = [f.rel_path for f in to_parse if f.rel_path in known]
    return to_parse, gone, changed, unchanged


def run_ingest(params: IngestParams, settings: Any, ctx: JobContext | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    root = resolve_root(params.path, params.package)
    all_files = discover(root, params.exclude)
    if not all_files:
        raise ConfigError(f"no .py files under {root}.", field="path" if params.path else "package",
                          hint="Point `path` at a folder of Python sources, or check `exclude`.")
    files = [f for f in all_files if f.size <= params.max_file_bytes]
    too_big = [(f.rel_path, f"file of {f.size} bytes exceeds max_file_bytes") for f in all_files if f not in files]
    root_prefix = all_files[0].rel_path.split("/")[0] + "/" if "/" in all_files[0].rel_path else ""
    writer = open_writer(params.write_to, settings, ctx)
    try:
        to_parse, gone, changed, unchanged = plan_changes(files, writer.file_shas(), root_prefix)
        to_delete = gone + changed
        results = _parse_all(to_parse, params.workers, ctx, prepared=params.write_to == "embedded")
        graphs = [r for r in results if not isinstance(r, tuple)]
        failures = too_big + [r for r in results if isinstance(r, tuple)]
        if ctx:
            ctx.progress(len(files), len(files), "files", "writing the graph")
        if to_delete or graphs:
            writer.replace_files(to_delete, graphs, PATTERNS)
            writer.rebuild_derived_edges()
        counts = writer.counts()
        fingerprint = writer.fingerprint()
    finally:
        writer.close()
    lines = sum(g.lines for g in graphs)
    seconds = time.perf_counter() - started
    return {
        "root": str(root), "store": params.write_to, "files_found": len(all_files), "files_parsed": len(graphs),
        "files_unchanged": unchanged, "files_removed": len(gone), "files_changed": len(changed),
        "files_failed": len(failures), "failures": [{"path": p, "error": e} for p, e in failures[:MAX_REPORTED_FAILURES]],
        "added": {kind: sum(_count(g, kind) for g in graphs) for kind in ("classes", "functions", "methods")},
        "lines_parsed": lines, "seconds": round(seconds, 3), "lines_per_second": round(lines / seconds) if seconds else None,
        "graph_counts": counts, "graph_fingerprint": fingerprint,
    }


def _count(parsed: Parsed, kind: str) -> int:
    return parsed.counts[kind] if isinstance(parsed, PreparedFile) else len(getattr(parsed, kind))


def open_writer(store: str, settings: Any, ctx: JobContext | None):  # noqa: ANN201 (GraphWriter)
    if store == "neo4j":
        from graphtune.tools.graph.neo4j_writer import Neo4jWriter

        return Neo4jWriter(settings)
    from graphtune.tools.graph.embedded_writer import EmbeddedWriter

    scratch = ctx.work_dir if ctx else settings.work_dir
    return EmbeddedWriter(settings.graph_dir, scratch)


def run_ingest_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Job handler registered as kind `ingest`."""
    return run_ingest(IngestParams(**params), ctx.settings, ctx)
