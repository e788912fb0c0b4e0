"""Ingest a code base (Python, TypeScript/JavaScript, Go, Java, Rust) into the graph (the `ingest` job kind).

Python files go through the `ast` parser, the others through tree-sitter (languages.py); all
produce the same FileGraph rows, so storing, resolving and the datasets are shared.

Scoped: every ingest belongs to one named code base (`codebase`, default derived from the
package / folder / file name) and adds, updates and removes only that code base's nodes;
other code bases in the same graph are never touched.
Incremental and idempotent: a file whose content hash is unchanged is skipped; a changed
file's old nodes are removed before its new ones are loaded; files gone from disk are
removed, with the Pattern nodes nothing implements any more. Cross-file edges (CALLS,
INHERITS, IMPORTS) are recomputed for the code base from raw names stored on the nodes, so
they stay right when only some files change. Files that fail to parse are reported and
skipped; the job still succeeds.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from graphtune.tools.errors import ConfigError, GraphtuneError
from graphtune.tools.graph.csv_rows import PreparedFile, prepare
from graphtune.tools.graph.discovery import (
    SourceFile,
    check_root,
    discover,
    no_source_error,
    unlisted_error,
)
from graphtune.tools.graph.entity_hashes import OwnHashes
from graphtune.tools.graph.ingest_config import IngestConfig
from graphtune.tools.graph.parse_pool import ordered_map
from graphtune.tools.graph.patterns import PATTERNS
from graphtune.tools.graph.languages import parse_source
from graphtune.tools.graph.python_parser import FileGraph, sha_of
from graphtune.tools.job_context import JobContext

MAX_REPORTED_FAILURES = 50
MAX_REPORTED_CODEBASES = 50
# One bulk load (COPY per table + a commit) per batch; a batch ends at whichever comes first. Bytes bound
# the memory (the batch's CSV text is held until its load); every extra batch costs a commit and COPYs
# into non-empty tables, which cost more (measured slower at every smaller size tried). 1M mixed lines
# are ~200 MB of CSV: one batch.
WRITE_BATCH_FILES = 20000
WRITE_BATCH_BYTES = 256 * 2**20
# Less source than this is parsed in this process: starting the parser processes and shipping rows
# back costs about what splitting the work saves (rxjs, 0.8 MB of TypeScript: 7 % faster in-process,
# medians of 8 paired ingests on 2 busy cores; syn, 1.9 MB, keeps the pool: 2 free cores halve its parse).
POOL_MIN_BYTES = 2**20


IngestParams = IngestConfig  # the job's params: the engine config (IngestRequest is it plus the MCP/CLI surface)


Parsed = FileGraph | PreparedFile


def _parse_one(item: SourceFile, prepared: bool = True, codebase: str = "") -> Parsed | tuple[str, str]:
    """Parse one file; for the embedded store also format its CSV rows here (in the worker)."""
    try:
        with open(item.abs_path, "rb") as handle:
            data = handle.read()
        graph = parse_source(item.rel_path, item.module_name, data, item.language, item.is_package)
        graph.codebase = codebase
    except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError, OSError) as exc:
        return item.rel_path, f"{type(exc).__name__}: {exc}"
    return prepare(graph) if prepared else graph


def _parse_stream(files: list[SourceFile], workers: int, prepared: bool,
                  codebase: str = "") -> Iterator[Parsed | tuple[str, str]]:
    """Parsed files in order, from a process pool when there are enough of them; the caller
    writes batches to the store while the pool keeps parsing (no idle core, bounded memory)."""
    workers = workers or os.cpu_count() or 1
    parse = partial(_parse_one, prepared=prepared, codebase=codebase)
    if workers == 1 or len(files) < 64 or sum(f.size for f in files) < POOL_MIN_BYTES:
        yield from map(parse, files)
        return
    from graphtune.tools.graph.languages import warm

    try:
        warm(files)  # before the fork: the parser processes inherit the loaded grammars
    except Exception:  # noqa: BLE001 (a grammar that cannot load fails its files, reported one by one, not the ingest)
        pass
    yield from ordered_map(parse, files, [f.size for f in files], workers)


def plan_changes(
    files: list[SourceFile], known: dict[str, str], root_prefix: str
) -> tuple[list[SourceFile], list[str], list[str], int]:
    """Files to parse, stored files gone from disk, stored files changed, count unchanged (by content hash).

    `known` holds the files of the code base being ingested only (path -> sha)."""
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
    root, codebase = check_root(params.path, params.package, params.codebase, params.languages)
    all_files, files, too_big = _select_files(params, root)
    writer = open_writer(params.write_to, settings, ctx, codebase, sum(f.size for f in files))
    graph, repaired = None, False
    try:
        _check_stored_root(writer, params, root, codebase)
        repaired = _repair_if_unfinished(writer, codebase, ctx)
        known = writer.file_shas()
        to_parse, gone, changed, unchanged = plan_changes(files, known, "")
        mark = _UnfinishedMark(writer, str(root), ctx.job_id if ctx else None, bool(to_parse or gone or changed))
        mark.delete_files(gone + changed)
        taken = _NameRegistry(writer, to_parse, stored=bool(known) or params.write_to != "embedded")
        loaded = _parse_and_load(writer, to_parse, params, codebase, ctx, taken, list(too_big), mark)
        failures, parsed, lines, added, own = loaded.failures, loaded.parsed, loaded.lines, loaded.added, loaded.own
        if failures and not parsed and not known:  # before the first write (_UnfinishedMark): no code base made
            raise _nothing_parsed(root, failures, "path" if params.path else "package")
        mark.before_write()
        writer.defer_checkpoint()  # the last commit's checkpoint runs beside the graph version (record_codebase_version)
        # one commit for the last batch, the derived edges and the CodeBase node
        writer.atomic(partial(_last_steps, writer, loaded.batch, ctx, len(to_parse), str(root),
                              rebuild=bool(gone or changed or parsed), fresh=not known))
        shas = writer.file_shas()
        graph = getattr(writer, "graph", None)  # embedded: snapshot through the open store, no reopen
        if graph is not None:  # unchanged files were not parsed: their entities' hashes come from the graph
            version = record_codebase_version(params.write_to, settings, codebase, shas, ctx, str(root), graph,
                                              None if unchanged else own, params.file_selection())
        # read after the version: its snapshot starts the store's checkpoint, and these wait for it
        counts, codebases, fingerprint = writer.counts(), writer.codebases(), writer.fingerprint()
    except BaseException:
        _close_after_failure(writer, repaired)
        raise
    writer.close()
    writer.finished()  # only now: the ingest succeeded and its last commit is checkpointed (unfinished.py)
    if graph is None:
        version = record_codebase_version(params.write_to, settings, codebase, shas, ctx, str(root),
                                          selection=params.file_selection())
    seconds = time.perf_counter() - started
    this = next((c for c in codebases if c["name"] == codebase), {"name": codebase})
    report = {
        "root": str(root), "codebase": codebase, "store": params.write_to, "files_found": len(all_files),
        "files_parsed": parsed, "files_unchanged": unchanged, "files_removed": len(gone), "files_changed": len(changed),
        "files_failed": len(failures), "failures": [{"path": p, "error": e} for p, e in failures[:MAX_REPORTED_FAILURES]],
        "files_partial": len(loaded.partial),
        "partial": [{"path": p, "note": n} for p, n in loaded.partial[:MAX_REPORTED_FAILURES]],
        "names_left_out": taken.left_out[:MAX_REPORTED_FAILURES], "added": added, "languages": dict(sorted(Counter(f.language for f in all_files).items())),
        "lines_parsed": lines, "seconds": round(seconds, 3), "lines_per_second": round(lines / seconds) if seconds else None,
        "codebase_files": this.get("files", 0), "codebase_nodes": this.get("nodes", 0),
        "graph_counts": counts, "graph_fingerprint": fingerprint,
        "graph_version": version["graph_version"], "previous_graph_version": version["previous_graph_version"],
        "entities_changed": {k: version[k] for k in ("added", "removed", "changed", "affected")},
        "diff": {k: v for k, v in version.items() if k not in ("graph_version", "previous_graph_version")},
        "codebases": codebases[:MAX_REPORTED_CODEBASES],
    }
    if repaired:  # only then: a normal ingest's report keeps its shape
        report["repaired"] = True
    return report


def selected_files(params: IngestParams, root: Any, unreadable: list[tuple[str, str]] | None = None
                   ) -> tuple[list[SourceFile], list[SourceFile], list[tuple[str, str]]]:
    """(every source file found, those an ingest reads, (path, reason) of the files too big): the one
    file-selection rule, which `watch` also hashes (cli_retrain.disk_version) to compare with a graph version."""
    all_files = discover(root, params.exclude, params.languages, unreadable)
    files = [f for f in all_files if f.size <= params.max_file_bytes]
    too_big = [(f.rel_path, f"file of {f.size} bytes exceeds max_file_bytes") for f in all_files
               if f.size > params.max_file_bytes]  # not `f not in files`: quadratic dataclass compares
    return all_files, files, too_big


def _select_files(params: IngestParams, root: Any) -> tuple[list[SourceFile], list[SourceFile], list[tuple[str, str]]]:
    """(every source file found, those to read, (path, reason) of what is not read: folders that could
    not be listed, files too big)."""
    unreadable: list[tuple[str, str]] = []
    all_files, files, too_big = selected_files(params, root, unreadable)
    field = "path" if params.path else "package"
    if not all_files:  # an exclude that left nothing is named before an unreadable folder
        raise unlisted_error(root, field, unreadable) if unreadable and not params.exclude else \
            no_source_error(root, field, excluded=bool(params.exclude))
    return all_files, files, unreadable + too_big


@dataclass
class _UnfinishedMark:
    """Marks the code base unfinished (writer.mark_unfinished) once, just before the ingest's first
    write rather than at its start. Why: the mark is itself a write (on Neo4j a MERGE that creates the
    CodeBase node; on the embedded store a marker file), and an ingest refused after parsing
    (_nothing_parsed) must leave a new code base nonexistent in either store. `wanted` False: an
    unchanged re-ingest's one write, the CodeBase node's time, cannot leave a partial code base."""

    writer: Any
    root: str
    job_id: str | None
    wanted: bool
    done: bool = False

    def before_write(self) -> None:
        if self.wanted and not self.done:
            self.writer.mark_unfinished(self.root, self.job_id)
            self.done = True

    def delete_files(self, paths: list[str]) -> None:
        """The stored files gone from disk or changed, removed (marked first: a partial code base follows)."""
        if paths:
            self.before_write()
            self.writer.delete_files(paths)


def _nothing_parsed(root: Any, failures: list[tuple[str, str]], field: str) -> ConfigError:
    """Every file of a new code base failed to parse or was too big: an empty code base would only
    fail later, in extraction, with a less helpful error. Raised before the ingest's first write
    (_UnfinishedMark), so that neither store holds the code base afterwards, not even marked unfinished."""
    files = [(path, error) for path, error in failures if not path.endswith("/")]  # not the unlisted folders
    path, error = (files or failures)[0]
    if files and all("exceeds max_file_bytes" in e for _, e in files):
        return ConfigError(f"all {len(files)} source file(s) under {root} are larger than the ingest reads "
                           f"(first: {path}: {error}); nothing was ingested.", field=field,
                           hint="Point it at hand-written sources: files this large are usually generated or "
                           "vendored code.")
    return ConfigError(f"none of the {len(files)} file(s) under {root} could be parsed (first: {path}: {error}); "
                       "nothing was ingested.", field=field,
                       hint="Check that the files are readable source code in a supported language, or exclude "
                       "the broken ones with `exclude`.")


def _repair_if_unfinished(writer: Any, codebase: str, ctx: JobContext | None) -> bool:
    """A code base whose last ingest did not finish (killed or failed part-way: graph/unfinished.py)
    is emptied, and this ingest rebuilds it whole; it stays marked unfinished until this one is done."""
    repaired = writer.repair_unfinished()
    if repaired and ctx:
        ctx.log(f"code base `{codebase}`: its last ingest did not finish; rebuilding it whole")
    return repaired


def _close_after_failure(writer: Any, repaired: bool) -> None:
    """Close the store of a failed or cancelled ingest; its code base stays marked unfinished if
    the ingest emptied it or committed anything (writer.failed)."""
    try:
        writer.close()
    finally:
        writer.failed(repaired)


def _last_steps(writer: Any, batch: list[Parsed], ctx: JobContext | None, files: int, root: str, *,
                rebuild: bool, fresh: bool) -> None:
    """The ingest's last transaction: the last batch, the derived edges (`fresh`: the code base had
    no stored file, so none to delete) and the CodeBase node. Repeatable: writer.atomic may run it
    again on a wider buffer pool after rolling it back."""
    writer.load(batch, PATTERNS)
    if ctx:
        ctx.progress(files, files, "files", "resolving calls, imports, inheritance")
    if rebuild:
        writer.rebuild_derived_edges(fresh=fresh)
        writer.prune_patterns()
    writer.record_codebase(root)


def _check_stored_root(writer: Any, params: IngestParams, root: Any, codebase: str) -> None:
    """Refuse a default code base name that another root already holds (nothing written yet)."""
    stored_root = writer.codebase_root()
    named = params.codebase is not None or params.package is not None  # a package's import name is its identity
    if stored_root is not None and stored_root != str(root) and not named:
        raise ConfigError(
            f"a code base named `{codebase}` already exists, ingested from {stored_root}; this ingest is "
            f"from {root}. Nothing was changed.", field="codebase",
            hint=f"Pass another `codebase` name to keep both side by side, or codebase='{codebase}' to "
            "move that code base to the new root (its files are then compared by content hash).")


@dataclass
class _Loaded:
    """What the parse-and-load loop leaves: its counts, the failures, the own-aspect hashes the
    parser processes made (for the graph version) and the last batch, not loaded yet."""

    failures: list[tuple[str, str]]
    partial: list[tuple[str, str]]  # (path, note): kept with regions its grammar could not read
    batch: list[Parsed]
    parsed: int
    lines: int
    added: dict[str, int]
    own: OwnHashes


def _parse_and_load(writer: Any, to_parse: list[SourceFile], params: IngestParams, codebase: str,
                    ctx: JobContext | None, taken: _NameRegistry, failures: list[tuple[str, str]],
                    mark: _UnfinishedMark) -> _Loaded:
    """Parse the files (a process pool for many) and load them in batches while the pool parses on;
    the first full batch is preceded by the unfinished mark (the last one is loaded by _last_steps)."""
    batch: list[Parsed] = []
    batch_bytes = 0
    parsed, lines, added = 0, 0, dict.fromkeys(("classes", "functions", "methods"), 0)
    own: OwnHashes = {}  # the graph version's own-aspect hashes, made by the parser processes
    partial: list[tuple[str, str]] = []
    stream = _parse_stream(to_parse, params.workers, params.write_to == "embedded", codebase)
    for i, result in enumerate(stream, 1):
        if not isinstance(result, tuple):
            result = taken.claim(result, codebase, params.write_to == "embedded")
        if isinstance(result, tuple):
            failures.append(result)
        else:
            batch.append(result)
            parsed, lines = parsed + 1, lines + result.lines
            if result.parse_gap:
                partial.append((result.path, result.parse_gap))
            if isinstance(result, PreparedFile):
                own.update(result.own)
                batch_bytes += result.size
            for kind in added:
                added[kind] += _count(result, kind)
        if len(batch) >= WRITE_BATCH_FILES or batch_bytes >= WRITE_BATCH_BYTES:
            mark.before_write()
            writer.load(batch, PATTERNS)
            batch, batch_bytes = [], 0
        if ctx and i % 50 == 0:
            ctx.progress(i, len(to_parse), "files", "parsing and loading")
    return _Loaded(failures, partial, batch, parsed, lines, added, own)


def record_codebase_version(store: str, settings: Any, codebase: str, shas: dict[str, str],
                            ctx: JobContext | None, root: str | None = None, graph: Any = None,
                            own: OwnHashes | None = None, selection: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record the code base's graph version (see graph/versions.py) and diff it with the previous one.
    `graph`: the embedded store the ingest still holds open, read through instead of reopened;
    `own`: the own-aspect hashes of the entities parsed in this ingest (entity_hashes)."""
    from graphtune.tools.graph import versions

    if ctx:
        ctx.progress(None, None, "entities", "recording the graph version and its diff", safe_point=False)
    version = versions.codebase_version(shas, codebase)

    def snapshot() -> dict[str, Any]:
        if graph is None:
            return versions.read_snapshot_from_graph(settings, store, codebase)
        # the snapshot's reads done, the store's checkpoint runs beside its hashing and writing (the next query waits)
        return versions.read_snapshot_from_graph(settings, store, codebase, graph, own, graph.checkpoint_in_background)

    try:
        return versions.record_version(settings, store, codebase, version, snapshot, ctx.job_id if ctx else None,
                                       root, selection)
    except (GraphtuneError, OSError, ValueError) as exc:  # the graph is written: report, never fail the ingest
        if ctx:
            ctx.log(f"graph version not recorded: {exc}")
        return {"graph_version": version, "previous_graph_version": None, "added": None, "removed": None,
                "changed": None, "affected": None, "error": f"graph version not recorded ({exc}); the next ingest "
                "diffs against the last recorded version"}


class _NameRegistry:
    """Qualified names must be unique in a code base. Python modules are files, so they are;
    a Go or Java package spans files, and two Rust files may implement `fmt` for one type: a
    definition whose name another file of the code base already holds is left out (first file
    in path order wins; an unchanged stored file wins over a re-parsed one), and the file is
    listed in `names_left_out`, instead of failing the whole load."""

    def __init__(self, writer: Any, to_parse: list[SourceFile], stored: bool = True) -> None:
        """`stored=False`: the code base holds no name yet (an embedded store with none of its files:
        its loads are transactions, so no definition outlives its file), so nothing is read."""
        self.by_path = {f.rel_path: f for f in to_parse}
        self.left_out: list[dict[str, str]] = []
        self.names: set[str] | None = None
        if any(f.language != "python" for f in to_parse):
            self.names = writer.qualified_names() if stored else set()

    def claim(self, result: Parsed, codebase: str, prepared: bool) -> Parsed | tuple[str, str]:
        item = self.by_path.get(result.path)
        if self.names is None or item is None or item.language == "python":
            return result
        names = result.names if isinstance(result, PreparedFile) else \
            [r["qualified_name"] for rows in (result.classes, result.functions, result.methods) for r in rows]
        clash = self.names.intersection(names)
        self.names.update(names)
        if not clash:
            return result
        with open(item.abs_path, "rb") as handle:
            graph = parse_source(item.rel_path, item.module_name, handle.read(), item.language)
        graph.codebase = codebase
        for store in ("classes", "functions", "methods"):
            setattr(graph, store, [r for r in getattr(graph, store) if r["qualified_name"] not in clash])
        graph.parameters = [p for p in graph.parameters if p["owner"] not in clash]
        graph.calls = [c for c in graph.calls if c[0] not in clash]
        if graph.defines is not None:
            graph.defines = [qn for qn in graph.defines if qn not in clash]
        self.left_out.append({"path": result.path, "names": sorted(clash)[:20]})
        return prepare(graph) if prepared else graph


def _count(parsed: Parsed, kind: str) -> int:
    return parsed.counts[kind] if isinstance(parsed, PreparedFile) else len(getattr(parsed, kind))


def open_writer(store: str, settings: Any, ctx: JobContext | None, codebase: str, source_bytes: int = 0) -> Any:
    """The store's writer for one code base; `source_bytes` (what the ingest may parse) sizes the
    embedded store's buffer pool (embedded.writer_buffer_pool)."""
    if store == "neo4j":
        from graphtune.tools.graph.neo4j_writer import Neo4jWriter

        return Neo4jWriter(settings, codebase)
    from graphtune.tools.graph.embedded_writer import EmbeddedWriter

    scratch = ctx.work_dir if ctx else settings.work_dir
    return EmbeddedWriter(settings.graph_dir, scratch, codebase, getattr(settings, "graph_lock_wait_s", 0.0),
                          source_bytes)


def run_ingest_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Job handler registered as kind `ingest`."""
    return run_ingest(IngestParams(**params), ctx.settings, ctx)
