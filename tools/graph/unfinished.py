"""Unfinished ingests of the embedded store: a marker file per code base, from an ingest's first write
until its last commit is checkpointed, so that a killed ingest is never mistaken for a complete one.

Why: the ingest's last commit leaves its checkpoint for later (EmbeddedGraph.defer_checkpoint), and
LadybugDB 0.22 keeps COPYed rows out of its WAL until the checkpoint. A worker killed in between
leaves the commit's WAL-logged statements (the CodeBase node, deletions of changed files and of the
derived edges) without its COPYed nodes and edges; killed earlier, between two commits, it leaves
some files' old nodes deleted and their new ones not loaded. Either way the store opens fine and
holds a partial code base, which the next ingest could not always see (a re-ingest that finds every
file unchanged does not rebuild the edges). The marker says so instead:
- readers (EmbeddedSource) refuse a code base with a marker, naming it (CodebaseIncomplete);
- the next ingest of it removes everything the code base holds and ingests it whole (repair).

An unchanged re-ingest writes no marker: its one write, the CodeBase node's ingest time, is WAL-logged
and cannot leave a partial graph. A failed ingest that committed nothing drops its marker.

Where: `<graph>.unfinished/<codebase>.json` beside the store. Only the process holding the store's
write lock writes or removes one, and a reader checks after opening the store (which a live writer's
lock forbids), so a marker a reader finds belongs to an ingest that is not running any more. The
marker costs the ingest one small file write, synced beside its first steps, and no wait for the
checkpoint: it is removed once the store is closed, which waits for the checkpoint anyway.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from graphtune.tools.errors import CodebaseIncomplete, StorageError


def marker_dir(graph_dir: Path) -> Path:
    return graph_dir.with_name(graph_dir.name + ".unfinished")


def marker_path(graph_dir: Path, codebase: str) -> Path:
    """Code base names are checked against schema.CODEBASE_NAME before any write: safe as file names."""
    return marker_dir(graph_dir) / f"{codebase}.json"


def mark(graph_dir: Path, codebase: str, root: str, job_id: str | None) -> Path:
    """Record that an ingest of `codebase` is writing; returns the marker's path. Not synced here
    (a killed process leaves it to the OS all the same): sync() runs beside the ingest's first steps,
    and its first commit waits for it (EmbeddedGraph.commit_after), so that not even a machine crash
    keeps a commit and loses the marker. Synced inline it cost ~0.5 ms, ~10 ms with the disk busy."""
    folder = marker_dir(graph_dir)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"codebase": codebase, "root": root, "job_id": job_id, "pid": os.getpid(),
              "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    temp = folder / f".{codebase}.{os.getpid()}.tmp"
    temp.write_text(json.dumps(record), encoding="utf-8")
    path = marker_path(graph_dir, codebase)
    os.replace(temp, path)  # never half a marker under its name (a cut-short one still counts: read())
    return path


def sync(path: Path) -> None:
    """Put a marker and its name on disk (file, then folder). A failure fails the ingest before its
    first commit (StorageError): a commit whose marker may be lost could leave a partial code base unseen."""
    try:
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        _sync_dir(path.parent)
    except OSError as exc:
        raise StorageError(f"cannot write the ingest's unfinished-marker {path} to disk ({exc}); nothing of "
                           "this ingest was committed.", hint=f"Check that {path.parent} is writable and "
                           "its disk has room, then run the ingest again.") from exc


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without directory handles (Windows): the file itself is synced
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clear(graph_dir: Path, codebase: str) -> None:
    """The ingest finished and its store is closed (every commit checkpointed). Not synced: a
    marker that a machine crash brings back only costs one repair ingest."""
    marker_path(graph_dir, codebase).unlink(missing_ok=True)


def read(graph_dir: Path, codebase: str) -> dict[str, Any] | None:
    """The marker of `codebase`, or None when its last ingest finished."""
    path = marker_path(graph_dir, codebase)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # a marker cut short: still a marker
        return {"codebase": codebase}


def unfinished(graph_dir: Path) -> list[str]:
    """Code bases whose last ingest did not finish, sorted."""
    folder = marker_dir(graph_dir)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json"))


def check_finished(graph_dir: Path, codebases: Iterable[str]) -> None:
    """Refuse to read any of `codebases` that an unfinished ingest left behind, naming each."""
    left = [read(graph_dir, name) for name in sorted(set(codebases) & set(unfinished(graph_dir)))]
    refuse_unfinished([record for record in left if record is not None])


_STORE_NAMES = {"embedded": "the embedded graph", "neo4j": "Neo4j"}


def refuse_unfinished(left: list[dict[str, Any]], write_to: str = "embedded") -> None:
    """CodebaseIncomplete naming each of `left` (markers: codebase, and root, started_at, job_id
    when known) in the store an ingest's `write_to` names; nothing when `left` is empty."""
    if not left:
        return
    names = ", ".join(f"`{r['codebase']}`" for r in left)
    first = left[0]
    store = _STORE_NAMES[write_to]
    target = f", write_to={write_to!r}" if write_to != "embedded" else ""
    where = f" (path={first['root']!r}, codebase={first['codebase']!r}{target})" if first.get("root") else \
        f" (codebase={first['codebase']!r}{target})"
    started = f", started {first['started_at']}" if first.get("started_at") else ""
    job = f", job {first['job_id']}" if first.get("job_id") else ""
    raise CodebaseIncomplete(
        f"the code base(s) {names} in {store} may be incomplete: the last ingest of "
        f"{'it' if len(left) == 1 else 'each'} stopped before it finished (the ingest of `{first['codebase']}`"
        f"{started}{job} was killed or failed), so some of its files, functions or edges may be missing.",
        field="codebases",
        hint=f"Run ingest_codebase again for {'it' if len(left) == 1 else 'each'}{where}: it finds the "
        "code base unfinished and rebuilds it whole. Meanwhile `codebases` can select the other code bases.")
