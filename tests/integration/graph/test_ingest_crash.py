"""An ingest worker killed at any point never leaves a partial code base for readers to see, and the
next ingest of that code base repairs it in full.

The embedded store's last commit leaves its checkpoint for later (EmbeddedGraph.defer_checkpoint),
and LadybugDB 0.22 keeps COPYed rows out of its WAL until the checkpoint: a worker killed in between
left the commit's WAL-logged statements (the CodeBase node, deletions of old files and of derived
edges) without its COPYed nodes and edges. Readers then saw a code base missing files and every
CALLS edge, and a re-ingest that found nothing to parse never put the edges back. Each case here
runs a real ingest in a child process, SIGKILLs it at a chosen point, opens the store as a reader
would, ingests again and compares every node, property and edge with a clean ingest's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from graphtune.server.settings import Settings
from graphtune.tools.errors import GraphtuneError
from graphtune.tools.graph.embedded import EmbeddedGraph
from graphtune.tools.graph.ingest import IngestParams, run_ingest
from graphtune.tools.graph.schema import NODE_TABLES, REL_TABLES
from graphtune.tools.graph.sources import open_source

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real"

# The child ingests, then pauses where told (writing `ready` first) until it is killed:
# before_checkpoint: right after the last commit, before its checkpoint (the graph-version phase);
# before_last_steps: earlier commits done (the changed files deleted), the last transaction not started.
CHILD = """
import sys, time
from pathlib import Path
from graphtune.server.settings import Settings
from graphtune.tools.graph import ingest
from graphtune.tools.graph.embedded import EmbeddedGraph

home, root, codebase, ready, point = sys.argv[1:6]

def pause(*args, **kwargs):
    Path(ready).write_text("paused")
    time.sleep(600)

if point == "before_checkpoint":
    EmbeddedGraph.checkpoint_in_background = pause
else:
    ingest._last_steps = pause
settings = Settings(home=Path(home))
settings.ensure_dirs()
ingest.run_ingest(ingest.IngestParams(path=root, codebase=codebase), settings)
raise SystemExit("the ingest finished without reaching its pause point")
"""


def _ingest(home: Path, root: Path, codebase: str) -> dict:
    settings = Settings(home=home)
    settings.ensure_dirs()
    return run_ingest(IngestParams(path=str(root), codebase=codebase), settings)


def _killed_ingest(home: Path, root: Path, codebase: str, point: str, tmp_path: Path) -> None:
    """Run an ingest in a child process and SIGKILL it at `point` (see CHILD)."""
    ready = tmp_path / f"ready-{point}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(home), str(root), codebase, str(ready), point],
                             env=env)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert child.poll() is None, f"the ingest child exited ({child.returncode}) before its pause point"
            assert time.monotonic() < deadline, "the ingest child never reached its pause point"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def _graph_dump(home: Path) -> list[str]:
    """Every node with every property (CodeBase without its ingest time) and every edge, sorted."""
    lines = []
    with EmbeddedGraph(Settings(home=home).graph_dir, read_only=True) as g:
        for table, columns in NODE_TABLES.items():
            names = ", ".join(f"n.`{name}`" for name, _ in columns if name != "ingested_at")
            rows = sorted(json.dumps(row) for row in g.rows(f"MATCH (n:{table}) RETURN {names}"))
            lines += [f"# {table} {len(rows)}", *rows]
        for rel, pairs in REL_TABLES.items():
            for src, dst in pairs:
                rows = sorted(json.dumps(r) for r in g.rows(f"MATCH (a:{src})-[:{rel}]->(b:{dst}) RETURN a.uid, b.uid"))
                lines += [f"# {rel} {src}->{dst} {len(rows)}", *rows]
    return lines


def _assert_reader_refused(home: Path, codebase: str, codebases: list[str] | None = None) -> None:
    """A reader (the extraction's graph source) gets a clear error naming the code base, never its partial graph."""
    settings = Settings(home=home)
    try:
        source = open_source("embedded", settings, None, codebases)
    except GraphtuneError as exc:
        assert exc.code == "codebase_incomplete", str(exc)
        assert f"`{codebase}`" in exc.message and "ingest_codebase" in (exc.hint or ""), str(exc)
        return
    try:
        counts = {t: source.count(t) for t in ("CodeFile", "Function", "Method")}
    finally:
        source.close()
    pytest.fail(f"a reader opened the code base `{codebase}` left by a killed ingest and saw {counts}")


def _copy(fixture: str, dest: Path) -> Path:
    shutil.copytree(REAL / fixture, dest)
    return dest


def test_killed_before_the_last_checkpoint_of_a_first_ingest(tmp_path: Path) -> None:
    root = _copy("uuid", tmp_path / "uuid")
    home = tmp_path / "home"
    _killed_ingest(home, root, "uuid", "before_checkpoint", tmp_path)
    _assert_reader_refused(home, "uuid")
    _assert_reader_refused(home, "uuid", ["uuid"])
    report = _ingest(home, root, "uuid")
    assert report["repaired"] is True and report["files_parsed"] == 19
    _ingest(tmp_path / "clean", root, "uuid")
    assert _graph_dump(home) == _graph_dump(tmp_path / "clean")
    open_source("embedded", Settings(home=home), None, ["uuid"]).close()  # readable again


def test_killed_before_the_last_checkpoint_of_a_re_ingest_that_deletes_a_file(tmp_path: Path) -> None:
    """The case that never healed: only derived-edge deletions and the CodeBase update survived the
    kill, so the next ingest found every file unchanged and left the code base without CALLS edges."""
    root, other = _copy("uuid", tmp_path / "uuid"), _copy("semver", tmp_path / "semver")
    home = tmp_path / "home"
    _ingest(home, other, "semver")
    _ingest(home, root, "uuid")
    (root / "null.go").unlink()
    _killed_ingest(home, root, "uuid", "before_checkpoint", tmp_path)
    _assert_reader_refused(home, "uuid")
    source = open_source("embedded", Settings(home=home), None, ["semver"])  # another code base stays readable
    try:
        assert source.count("CodeFile") > 0
    finally:
        source.close()
    _ingest(home, root, "uuid")
    clean = tmp_path / "clean"
    _ingest(clean, other, "semver")
    _ingest(clean, root, "uuid")
    assert _graph_dump(home) == _graph_dump(clean)


def test_killed_between_earlier_commits_and_the_last_transaction(tmp_path: Path) -> None:
    """Earlier in the ingest: the edited file's old nodes were deleted and committed, its new ones not loaded."""
    root = _copy("uuid", tmp_path / "uuid")
    home = tmp_path / "home"
    _ingest(home, root, "uuid")
    edited = root / "uuid.go"
    edited.write_text(edited.read_text() + "\nfunc Extra() int { return 1 }\n")
    _killed_ingest(home, root, "uuid", "before_last_steps", tmp_path)
    _assert_reader_refused(home, "uuid")
    _ingest(home, root, "uuid")
    _ingest(tmp_path / "clean", root, "uuid")
    assert _graph_dump(home) == _graph_dump(tmp_path / "clean")


def _fail_last_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtune.tools.graph import ingest

    def boom(*args: object, **kwargs: object) -> None:
        raise GraphtuneError("injected failure in the last transaction")

    monkeypatch.setattr(ingest, "_last_steps", boom)


def test_a_failed_ingest_that_committed_nothing_leaves_the_code_base_readable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _copy("uuid", tmp_path / "uuid")
    home = tmp_path / "home"
    _ingest(home, root, "uuid")
    before = _graph_dump(home)
    (root / "extra.go").write_text("package uuid\n\nfunc Extra() int { return 1 }\n")  # parsed, nothing deleted
    with monkeypatch.context() as patch:
        _fail_last_steps(patch)
        with pytest.raises(GraphtuneError, match="injected"):
            _ingest(home, root, "uuid")
    assert _graph_dump(home) == before
    open_source("embedded", Settings(home=home), None, ["uuid"]).close()


def test_a_failed_ingest_after_a_commit_leaves_the_code_base_refused_until_re_ingested(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _copy("uuid", tmp_path / "uuid")
    home = tmp_path / "home"
    _ingest(home, root, "uuid")
    (root / "null.go").unlink()  # its nodes are deleted (and committed) before the last transaction
    with monkeypatch.context() as patch:
        _fail_last_steps(patch)
        with pytest.raises(GraphtuneError, match="injected"):
            _ingest(home, root, "uuid")
    _assert_reader_refused(home, "uuid", ["uuid"])
    assert _ingest(home, root, "uuid")["repaired"] is True
    _ingest(tmp_path / "clean", root, "uuid")
    assert _graph_dump(home) == _graph_dump(tmp_path / "clean")


def test_the_first_commit_waits_for_the_marker_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The marker is synced on a thread beside the ingest's first steps; a sync that fails fails the
    ingest before anything is committed (a commit without a durable marker could go unnoticed)."""
    from graphtune.tools.graph import unfinished

    root = _copy("uuid", tmp_path / "uuid")
    home = tmp_path / "home"
    _ingest(home, root, "uuid")
    before = _graph_dump(home)
    (root / "null.go").unlink()

    def failing_fsync(fd: int) -> None:
        time.sleep(0.2)  # slower than the steps before the first commit: that commit has to wait
        raise OSError(5, "Input/output error (injected)")

    monkeypatch.setattr(unfinished.os, "fsync", failing_fsync)
    with pytest.raises(GraphtuneError, match="unfinished-marker .*injected") as failed:
        _ingest(home, root, "uuid")
    assert failed.value.code == "storage_error"
    monkeypatch.undo()
    assert _graph_dump(home) == before


def test_an_unchanged_re_ingest_writes_no_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its one write is the CodeBase node's ingest time, which cannot leave a partial graph: no marker, no sync."""
    from graphtune.tools.graph import unfinished

    root = _copy("uuid", tmp_path / "uuid")
    home = tmp_path / "home"
    _ingest(home, root, "uuid")
    marked: list[str] = []
    real = unfinished.mark
    monkeypatch.setattr(unfinished, "mark", lambda *args: marked.append(args[1]) or real(*args))
    assert _ingest(home, root, "uuid")["files_parsed"] == 0 and marked == []
    assert unfinished.unfinished(Settings(home=home).graph_dir) == []
