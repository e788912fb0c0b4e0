"""The embedded graph store: LadybugDB in a folder under the data dir; no server needed.

One read-write process at a time (LadybugDB locks the folder): the ingest job worker writes,
everything else opens read-only. graphtune's own jobs never collide on the lock (the job store
runs one graph writer at a time, and no reader beside it); a lock held by a process outside
the job store is waited for, up to `lock_wait_s`, before failing. Bulk loads go through
CSV + `COPY FROM` (~25x faster than row-by-row CREATE); reads stream row by row.
"""

from __future__ import annotations

import csv
import gc
import json
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from graphtune.tools.errors import GraphUnavailable, QueryFailed, SchemaMismatch, StorageError
from graphtune.tools.graph.embedded_pool import PoolTooSmall, pool_full, short_of_headroom
from graphtune.tools.graph.schema import (
    NODE_TABLES,
    REL_TABLES,
    SCOPED_TABLES,
    ddl,
    graph_fingerprint,
    uid,
)

log = logging.getLogger(__name__)


def _is_lock_error(exc: Exception) -> bool:
    return "lock" in str(exc).lower()


def _map_error(exc: Exception, path: Path, waited_s: float = 0.0) -> GraphUnavailable:
    text = str(exc)
    if _is_lock_error(exc):
        state = "locked by another process" + (f" (still, after waiting {waited_s:.0f}s)" if waited_s else "")
        return GraphUnavailable(f"the embedded graph at {path} is {state} ({text}).",
                                hint="A process outside graphtune's job queue holds it (a notebook, a script, an "
                                "older graphtune): close it, then run the job again. GRAPHTUNE_GRAPH_LOCK_WAIT_S "
                                "sets how long jobs wait for it.")
    return GraphUnavailable(f"cannot open the embedded graph at {path}: {text}",
                            hint="Run `ingest_codebase` first, or check GRAPHTUNE_HOME.")


def _newline_in_a_field(body: str) -> bool:
    """Whether CSV rows of quoted fields hold a newline inside a field, not only between records
    (which end `"\n` and start `"`): LadybugDB's parallel CSV reader refuses quoted newlines."""
    return "\n" in body[:-1].replace('"\n"', "")


T = TypeVar("T")


class EmbeddedGraph:
    def __init__(self, path: Path, *, read_only: bool, lock_wait_s: float = 0.0, buffer_pool_bytes: int = 0) -> None:
        """`buffer_pool_bytes`: 0 for LadybugDB's default; an ingest writer's sized pool
        (embedded_pool.writer_buffer_pool) gives way to the default wherever it proves too small."""
        import ladybug

        self.path = path
        if read_only and not path.exists():
            raise GraphUnavailable(f"no embedded graph at {path} yet.", field="source",
                                   hint="Build one with `ingest_codebase` (or `graphtune ingest PATH`).")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.pool, self._read_only, self._lock_wait_s = buffer_pool_bytes, read_only, lock_wait_s
        self._open_transactions = 0
        self._inner_failed: BaseException | None = None
        self._checkpoint: Future[None] | None = None
        self._deferred = False  # commits skip their checkpoint (defer_checkpoint)
        self.commits = 0  # COMMITs sent, failed ones too (one may have committed): whether anything was written
        self._commit_gate: Future[None] | None = None  # what the next commit waits for (commit_after)
        self._connect(ladybug)
        try:
            try:
                self._prepare()
            except PoolTooSmall:  # the schema's transaction was rolled back: once more on the default pool
                self.widen_pool()
                self._prepare()
        except BaseException:
            self.close()
            raise

    def _connect(self, ladybug: Any) -> None:
        """Open the store, waiting up to `lock_wait_s` for a lock held elsewhere."""
        started, delay, retried = time.monotonic(), 0.1, False
        while True:
            try:
                self.db = self._open(ladybug, self.path, self._read_only, self.pool)
                self.conn = ladybug.Connection(self.db)
                return
            except RuntimeError as exc:
                if self.pool and pool_full(exc):  # replaying a WAL left behind needed more: the default pool
                    exc.with_traceback(None)  # nothing of the failed open may outlive it (see _release)
                    self.pool = 0
                    continue
                waited = time.monotonic() - started
                if not _is_lock_error(exc) or waited + delay > self._lock_wait_s:
                    raise _map_error(exc, self.path, waited if retried else 0.0) from exc
                retried = True
                log.warning("embedded graph %s is locked (%s); retrying for up to %.0fs more", self.path, exc,
                            self._lock_wait_s - waited)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _prepare(self) -> None:
        tables = {row[0] for row in self.rows("CALL show_tables() RETURN name")}
        self._check_schema(tables)
        if not self._read_only:
            self._create_tables(tables)

    def widen_pool(self) -> None:
        """Reopen the store with LadybugDB's default buffer pool: a sized pool proved too small for
        a statement or transaction, which the store rolled back. Only between transactions. A commit
        whose checkpoint was deferred is checkpointed first, so that a failure is raised: close()
        checkpoints too, but one that fails there drops the commit's COPYed rows without a word
        (LadybugDB keeps them out of the WAL until the checkpoint)."""
        import ladybug

        log.warning("embedded graph %s: a buffer pool of %d MiB was too small; reopening it with the default pool",
                    self.path, self.pool >> 20)
        self._wait_checkpoint()
        if self._deferred:
            try:
                self.conn.execute("CHECKPOINT")
            except RuntimeError as exc:
                raise QueryFailed(f"embedded graph checkpoint failed: {exc.with_traceback(None)}") from exc
        self._release()
        self.pool = 0
        self._connect(ladybug)
        if self._deferred:
            self.conn.execute("CALL auto_checkpoint=false")

    def _release(self) -> None:
        """Close the store for good before it is opened again in this process: LadybugDB shuts a
        database down only once nothing holds its C++ objects, and a late shutdown deletes the WAL
        the reopened store writes to (its checkpoint then fails: "Error renaming file ...wal").
        Failed statements drop the driver's frames that hold them (_failure); anything else
        still holding the old store is collected here, or the reopen is refused."""
        old = weakref.ref(self.db)
        self.conn.close()
        self.db.close()
        self.conn = self.db = None
        if old() is not None:
            gc.collect()
        if old() is not None:
            raise QueryFailed(f"the embedded graph at {self.path} cannot be reopened with a larger buffer pool: "
                              "its closed handle is still referenced in this process")

    def _check_schema(self, tables: set[str]) -> None:
        """A store written before code bases existed (no `uid` key) is refused, never modified:
        its nodes cannot be told apart by code base, so the safe path is a rebuild."""
        if "CodeFile" not in tables:
            return
        columns = {row[0] for row in self.rows("CALL table_info('CodeFile') RETURN name")}
        if "uid" not in columns:
            raise SchemaMismatch(
                f"the embedded graph at {self.path} was built by an older graphtune, before code bases "
                "existed; it cannot hold several code bases side by side.", field="graph",
                hint=f"Nothing was changed. Move or delete the folder {self.path} (e.g. `rm -r '{self.path}'`), "
                "then ingest each code base again (`ingest_codebase` / `graphtune ingest`, one call per code base).")

    def _create_tables(self, tables: set[str]) -> None:
        """Create missing tables in one transaction (each auto-committed DDL statement paid its own
        commit: ~30 ms of every first ingest), then add columns newer than an existing store."""
        if not (set(NODE_TABLES) | set(REL_TABLES)) <= tables:
            with self.transaction():  # the statements as one query: one parse and bind round trip (~15 -> ~9 ms)
                self._execute_many(ddl())
        if tables:
            self._add_new_columns()

    def _add_new_columns(self) -> None:
        """Columns added since a store was created (Class.kind, CodeFile.inherits with the
        tree-sitter languages) are appended in place: the store keeps its nodes, and new columns
        come last in NODE_TABLES, so bulk loads line up."""
        for table, columns in NODE_TABLES.items():
            present = {row[0] for row in self.rows(f"CALL table_info('{table}') RETURN name")}
            for name, kind in columns:
                if name not in present:
                    self.execute(f"ALTER TABLE {table} ADD `{name}` {kind}")

    @staticmethod
    def _open(ladybug: Any, path: Path, read_only: bool, pool: int = 0) -> Any:
        """Open; after a writer was killed mid-write, replay its WAL once (a brief read-write
        open) so read-only readers can open again instead of failing until the next ingest."""
        try:
            return ladybug.Database(str(path), read_only=read_only, buffer_pool_size=pool)
        except RuntimeError as exc:
            if not (read_only and "recovery is pending" in str(exc)):
                raise
        ladybug.Database(str(path), read_only=False).close()  # raises a lock error if a writer is active
        return ladybug.Database(str(path), read_only=True)

    def close(self) -> None:
        """Close; a checkpoint started by checkpoint_in_background() is waited for first (its error,
        if any, is raised after the store is closed: the commit's WAL-logged statements are kept,
        its COPYed rows are not, see defer_checkpoint)."""
        try:
            self._wait_checkpoint()
        finally:
            try:
                self._wait_commit_gate()  # nothing committed since (else COMMIT waited): only no thread left behind
            except (OSError, StorageError) as exc:  # the ingest failed before its first commit: its error is the one
                log.warning("embedded graph %s: a step awaited by a commit never made failed: %s", self.path, exc)
            if self.conn is not None:  # None: a reopen (widen_pool) failed half-way
                self.conn.close()
                self.db.close()

    def defer_checkpoint(self) -> None:
        """Commits from now on skip the checkpoint (the WAL stays until checkpoint_in_background()
        or close()): a big commit's time is mostly its checkpoint, which LadybugDB runs in C++ with
        the GIL released, so the ingest can move it beside the pure-Python work that follows its
        last reads (the graph-version snapshot) instead of waiting for it in COMMIT. Until then a
        commit's COPYed rows live only in this process: LadybugDB 0.22 keeps them out of the WAL; a
        process killed before the checkpoint leaves its code base marked unfinished (graph/unfinished.py)."""
        self.execute("CALL auto_checkpoint=false")
        self._deferred = True

    def checkpoint_in_background(self) -> None:
        """Start the checkpoint on a thread. The next query (or close) waits for it first: a
        checkpoint and a transaction never overlap, and reads after it are faster than reads of
        data still in the WAL (the ingest's final counts: ~35 -> ~16 ms on rxjs)."""
        if self._checkpoint is None:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-checkpoint")
            self._checkpoint = pool.submit(self.conn.execute, "CHECKPOINT")
            pool.shutdown(wait=False)  # the checkpoint runs on; _wait_checkpoint() waits for its future

    def commit_after(self, work: Callable[..., None], *args: Any) -> None:
        """Run `work(*args)` on a thread; the next COMMIT waits for it and fails with its error. The
        ingest syncs its unfinished-marker this way (graph/unfinished.py): on disk before anything
        is committed, without the ingest waiting for the disk before its first steps."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-commit-gate")
        self._commit_gate = pool.submit(work, *args)
        pool.shutdown(wait=False)

    def _wait_commit_gate(self) -> None:
        gate, self._commit_gate = self._commit_gate, None
        if gate is not None:
            gate.result()

    def _wait_checkpoint(self) -> None:
        pending, self._checkpoint = self._checkpoint, None
        if pending is not None:
            try:
                pending.result()
            except RuntimeError as exc:
                raise QueryFailed(f"embedded graph checkpoint failed: {exc.with_traceback(None)}") from exc

    def __enter__(self) -> "EmbeddedGraph":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run a group of writes (the COPYs of a batch, the edge rebuild) as one transaction:
        each auto-committed statement pays its own commit (measured ~40 ms apiece, the fixed
        cost that dominated small ingests); on an error nothing of the group is kept. Inside
        another transaction it joins that one (one commit for the ingest's last steps).
        atomic() is the same plus one more run on the default pool when a sized one is short."""
        if self._open_transactions:
            with self._joined():
                yield
            return
        self.execute("BEGIN TRANSACTION")
        self._open_transactions, self._inner_failed = 1, None
        try:
            yield
            if isinstance(self._inner_failed, PoolTooSmall):
                raise PoolTooSmall("a nested group of writes ran out of the buffer pool; nothing of it is kept")
            if self._inner_failed is not None:
                raise QueryFailed("a nested group of writes failed inside this transaction; nothing of it is kept")
            self._commit()
        except BaseException:
            self._rollback()
            raise
        finally:
            self._open_transactions = 0

    @contextmanager
    def _joined(self) -> Iterator[None]:
        self._open_transactions += 1
        try:
            yield
        except BaseException as exc:
            self._inner_failed = exc  # the outer transaction must not commit half a group
            raise
        finally:
            self._open_transactions -= 1

    def _commit(self) -> None:
        """COMMIT; on a sized pool only with headroom for it and the checkpoint after it (a
        checkpoint that runs out of memory loses the COPYed rows: embedded_pool)."""
        self._wait_commit_gate()
        if self.pool:
            in_use = next(self.rows("CALL bm_info() RETURN mem_usage"))[0]
            if short_of_headroom(in_use, self.pool):
                raise PoolTooSmall(f"{in_use >> 20} MiB of the embedded graph's {self.pool >> 20} MiB buffer "
                                   "pool in use before a commit: too little headroom for its checkpoint")
        self.commits += 1
        self.execute("COMMIT")

    def _rollback(self) -> None:
        try:
            self.execute("ROLLBACK")
        except QueryFailed as exc:
            if "No active transaction" not in str(exc):  # a failed statement already ended it
                log.warning("rollback of the embedded graph transaction failed", exc_info=True)

    def atomic(self, work: Callable[[], T]) -> T:
        """Run `work` as one transaction (joining an open one). Where a sized buffer pool proves too
        small before the commit (nothing was kept), the store is reopened with the default pool and
        `work` runs once more, from the same state: the ingest never fails for our pool sizing."""
        if self._open_transactions:
            with self.transaction():
                return work()
        try:
            with self.transaction():
                return work()
        except PoolTooSmall:
            self.widen_pool()
        with self.transaction():
            return work()

    def rows(self, cypher: str, params: dict[str, Any] | None = None) -> Iterator[list[Any]]:
        """Stream result rows as lists (the cheap form; callers zip with column names)."""
        if self._checkpoint is not None:
            self._wait_checkpoint()
        result = self._run(cypher, params or {})
        while result.has_next():
            yield result.get_next()

    def _run(self, cypher: str, params: dict[str, Any]) -> Any:
        """Execute one statement. Outside a transaction, one that finds a sized pool full (the store
        rolled it back) runs once more on the default pool; inside one, atomic() runs the whole again."""
        try:
            return self.conn.execute(cypher, params)
        except RuntimeError as exc:
            failure = self._failure(exc)
            if self._open_transactions or not isinstance(failure, PoolTooSmall):
                raise failure from exc
        self.widen_pool()
        try:
            return self.conn.execute(cypher, params)
        except RuntimeError as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: RuntimeError) -> QueryFailed:
        """PoolTooSmall for a sized pool found full before a commit (not a failed post-commit checkpoint,
        which LadybugDB reports after committing: nothing to run again), else QueryFailed. The driver's
        frames are dropped from `exc`: they hold the connection's C++ state, which would keep a closed
        store alive until the garbage collector finds them, and its late shutdown deletes the WAL of
        the store reopened at the same path (widen_pool)."""
        exc.with_traceback(None)
        kind = PoolTooSmall if self.pool and pool_full(exc) and "committed" not in str(exc) else QueryFailed
        return kind(f"embedded graph query failed: {exc}")

    def execute(self, cypher: str, params: dict[str, Any] | None = None) -> None:
        for _ in self.rows(cypher, params):
            pass

    def _execute_many(self, statements: list[str]) -> None:
        """Run statements sent as one query string (LadybugDB answers with a list of results, one per
        statement, so there are no rows to stream)."""
        if self._checkpoint is not None:
            self._wait_checkpoint()
        self._run(";\n".join(statements), {})

    def counts(self, codebase: str | None = None) -> dict[str, int]:
        """Nodes per table and edges per relationship: of the whole graph, or of one code base."""
        if not codebase:
            return self._whole_graph_counts()
        where, params = "WHERE n.codebase = $cb", {"cb": codebase}
        counts = {t: next(self.rows(f"MATCH (n:{t}) {where} RETURN count(n)", params))[0] for t in SCOPED_TABLES}
        for rel in REL_TABLES:
            counts[rel] = next(self.rows(f"MATCH (n)-[r:{rel}]->() {where} RETURN count(r)", params))[0]
        return counts

    def _whole_graph_counts(self) -> dict[str, int]:
        """Two grouped scans instead of one count query per table (16): half the time (~6 vs ~13 ms
        on syn's graph), which every ingest pays for its report."""
        counts = dict.fromkeys(NODE_TABLES, 0) | dict.fromkeys(REL_TABLES, 0)
        for query in ("MATCH (n) RETURN label(n), count(*)", "MATCH ()-[r]->() RETURN label(r), count(*)"):
            counts.update((label, n) for label, n in self.rows(query) if label in counts)  # only graphtune's tables
        return counts

    def file_shas(self, codebase: str | None = None) -> dict[str, str]:
        """Content hash per file: keyed by path within one code base, else by "codebase:path"."""
        if codebase:
            return dict(self.rows("MATCH (f:CodeFile) WHERE f.codebase = $cb RETURN f.path, f.sha", {"cb": codebase}))
        return dict(self.rows("MATCH (f:CodeFile) RETURN f.uid, f.sha"))

    def fingerprint(self, codebases: list[str] | None = None) -> str:
        if codebases is None:
            return graph_fingerprint(self.file_shas())
        return graph_fingerprint({uid(cb, p): sha for cb in codebases for p, sha in self.file_shas(cb).items()})

    def codebases(self) -> list[dict[str, Any]]:
        """Every code base: name, root, files, nodes (code nodes of all kinds) and last ingest time.
        The code nodes are counted in one scan grouped by table and code base (one count query per
        table cost each ingest's report ~1-2 ms apiece)."""
        nodes: dict[str, int] = {}
        files: dict[str, int] = {}
        scan = f"MATCH (n:{':'.join(SCOPED_TABLES)}) RETURN label(n), n.codebase, count(*)"  # one grouped scan, not 6
        for table, name, count in self.rows(scan):
            nodes[name] = nodes.get(name, 0) + count
            if table == "CodeFile":
                files[name] = count
        return [{"name": name, "root": root, "files": files.get(name, 0), "nodes": nodes.get(name, 0),
                 "last_ingest": at} for name, root, at in
                self.rows("MATCH (c:CodeBase) RETURN c.name, c.root, c.ingested_at ORDER BY c.name")]

    def delete_files(self, codebase: str, paths: list[str]) -> None:
        """Remove everything these files of `codebase` contributed (nodes and their edges)."""
        if not paths:
            return
        params = {"paths": paths, "cb": codebase}
        for table in ("Parameter", "Method", "Function", "Class"):
            self.execute(f"MATCH (n:{table}) WHERE n.codebase = $cb AND n.file_path IN $paths DETACH DELETE n", params)
        self.execute("MATCH (n:CodeFile) WHERE n.codebase = $cb AND n.path IN $paths DETACH DELETE n", params)

    def copy_nodes(self, table: str, rows: Iterable[dict[str, Any]], scratch: Path) -> int:
        from graphtune.tools.graph.csv_rows import node_csv

        return self.copy_csv(table, [node_csv(table, rows)], scratch)

    def copy_csv(self, key: Any, bodies: Iterable[str], scratch: Path) -> int:
        """COPY pre-formatted CSV bodies (see csv_rows) into a node table (key: name) or a
        relationship (key: (rel, from, to)); returns the bytes written (0: nothing to load)."""
        if isinstance(key, str):
            header, name, options = [n for n, _ in NODE_TABLES[key]], key, ", PARALLEL=false"
        else:
            rel, src, dst = key
            header, name = ["from", "to"], rel
            options = "" if len(REL_TABLES[rel]) == 1 else f", from='{src}', to='{dst}'"
            bodies = list(bodies)
            if any(_newline_in_a_field(body) for body in bodies):  # the parallel reader refuses those
                options += ", PARALLEL=false"
        path = scratch / (f"{key}.csv" if isinstance(key, str) else "_".join(key) + ".csv")
        size = 0
        with open(path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(header)
            for body in bodies:
                handle.write(body)
                size += len(body)
        if size:
            self.execute(f"COPY {name} FROM '{path}' (HEADER=true, QUOTE='\"', ESCAPE='\"'{options})")
        return size

    def copy_rels(self, rel: str, src: str, dst: str, pairs: Iterable[tuple[str, str]], scratch: Path) -> int:
        from graphtune.tools.graph.csv_rows import to_csv

        return self.copy_csv((rel, src, dst), [to_csv(pairs)], scratch)


def decode_list(text: str | None) -> list[Any]:
    """A JSON list property back; most are empty (no calls, bases, decorators): no parse for those.
    A list of plain strings as json.dumps writes it (no escapes: then every `"` delimits an item)
    is split without the JSON parser, ~5x faster; anything else goes through json.loads."""
    if not text or text == "[]":
        return []
    if "\\" not in text and text.startswith('["') and text.endswith('"]'):
        items = text[2:-2].split('", "')
        if text.count('"') == 2 * len(items):
            return items
    return json.loads(text)
