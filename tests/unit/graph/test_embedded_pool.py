"""An ingest writer's buffer pool is sized to the ingest (embedded_pool); one that proves too small
never fails the ingest: the statement or transaction the store rolled back runs again on the default
pool, and the graph (every node, property, edge, the report and the version snapshot, as
bench/graph_dump.py dumps them) is byte-identical to an ingest on the default pool."""

from __future__ import annotations

import importlib.util
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from graphtune.tools.graph import embedded, embedded_pool, embedded_writer
from graphtune.tools.graph.embedded import EmbeddedGraph

EMAIL = Path(sysconfig.get_paths()["stdlib"]) / "email"
MiB = 2**20
POOL_FULL = "Buffer manager exception: Unable to allocate memory! The buffer pool is full and no memory could be freed!"


def _dump_module() -> Any:
    spec = importlib.util.spec_from_file_location("graph_dump", Path(__file__).parents[3] / "bench" / "graph_dump.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dump(home: Path) -> str:
    out = home.with_suffix(".txt")
    _dump_module().dump(str(EMAIL), out, None, 1, home=home)
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The dump of an ingest on LadybugDB's default pool (no sizing at all)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedded_writer, "writer_buffer_pool", lambda path, source_bytes: 0)
        return _dump(tmp_path_factory.mktemp("reference") / "home")


@pytest.fixture
def widened(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pool sizes widen_pool() replaced, in order."""
    seen: list[int] = []
    real = EmbeddedGraph.widen_pool

    def spy(self: EmbeddedGraph) -> None:
        seen.append(self.pool)
        real(self)

    monkeypatch.setattr(EmbeddedGraph, "widen_pool", spy)
    return seen


def _force_pool(monkeypatch: pytest.MonkeyPatch, mib: int, headroom_check: bool = True) -> None:
    monkeypatch.setattr(embedded_writer, "writer_buffer_pool", lambda path, source_bytes: mib * MiB)
    if not headroom_check:  # let the store itself find the pool full
        monkeypatch.setattr(embedded_pool, "HEADROOM_FACTOR", 0)
        monkeypatch.setattr(embedded_pool, "HEADROOM_SPARE", 0)


def test_the_sized_pool_leaves_the_graph_unchanged(tmp_path: Path, reference: str, widened: list[int]) -> None:
    assert _dump(tmp_path / "home") == reference
    assert widened == []  # the 4 GiB floor: 30x what the largest measured ingest needs


def test_a_pool_short_of_headroom_is_widened_before_a_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           reference: str, widened: list[int]) -> None:
    """24 MiB: the schema fits, but its commit would leave too little for a checkpoint (a checkpoint
    that runs out of memory loses the COPYed rows), so it is rolled back and run on the default pool."""
    _force_pool(monkeypatch, 24)
    assert _dump(tmp_path / "home") == reference
    assert widened == [24 * MiB]


def test_a_statement_that_finds_the_pool_full_runs_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         reference: str, widened: list[int]) -> None:
    """8 MiB and no headroom check: LadybugDB fails the schema's DDL ("buffer pool is full"). Also
    the regression test for the reopen: the failed store's driver frames kept it alive, and its late
    shutdown deleted the WAL of the reopened store (the last checkpoint then failed)."""
    _force_pool(monkeypatch, 8, headroom_check=False)
    assert _dump(tmp_path / "home") == reference
    assert widened == [8 * MiB]


def _fail_once(monkeypatch: pytest.MonkeyPatch, failing: Callable[[str], bool]) -> list[str]:
    """The sized writer's connection fails the first statement `failing` picks as a full pool would."""
    failed: list[str] = []
    real_connect = EmbeddedGraph._connect

    class FullOnce:
        def __init__(self, conn: Any) -> None:
            self.conn = conn

        def execute(self, cypher: str, params: dict | None = None) -> Any:
            if not failed and failing(cypher):
                failed.append(cypher)
                raise RuntimeError(POOL_FULL)
            return self.conn.execute(cypher, params or {})

        def close(self) -> None:
            self.conn.close()

    def connect(self: EmbeddedGraph, ladybug: Any) -> None:
        real_connect(self, ladybug)
        if self.pool:
            self.conn = FullOnce(self.conn)

    monkeypatch.setattr(EmbeddedGraph, "_connect", connect)
    return failed


def test_a_transaction_that_finds_the_pool_full_runs_again_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                reference: str, widened: list[int]) -> None:
    """A COPY of the last transaction (last batch, derived edges, CodeBase node) fails: the store
    rolled the transaction back, and atomic() runs all of it again on the default pool."""
    failed = _fail_once(monkeypatch, lambda cypher: cypher.startswith("COPY Method"))
    assert _dump(tmp_path / "home") == reference
    assert failed and widened == [embedded_pool.WRITER_POOL_FLOOR]


def test_a_read_after_the_deferred_commit_checkpoints_before_the_reopen(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: str, widened: list[int]) -> None:
    """A graph-version read fails after the last commit, whose checkpoint is deferred: its COPYed rows
    are only in memory (LadybugDB keeps them out of the WAL) until the checkpoint that comes before
    the reopen (widen_pool's own, or close()'s); nothing is lost and the read runs again."""
    failed = _fail_once(monkeypatch, lambda cypher: cypher.startswith("MATCH (n:Class) WHERE n.codebase IN"))
    assert _dump(tmp_path / "home") == reference
    assert failed and widened == [embedded_pool.WRITER_POOL_FLOOR]


def test_the_last_commit_short_of_headroom_runs_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      reference: str, widened: list[int]) -> None:
    """The headroom check fails at the ingest's last commit only (the schema's passed)."""
    commits: list[int] = []

    def short(in_use: int, pool: int) -> bool:
        commits.append(in_use)
        return len(commits) == 2  # 1: the schema; 2: the last transaction (email loads in one batch)

    monkeypatch.setattr(embedded, "short_of_headroom", short)
    assert _dump(tmp_path / "home") == reference
    assert len(commits) == 2 and widened == [embedded_pool.WRITER_POOL_FLOOR]


def test_the_sized_pool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The floor, 64 bytes per byte of stored graph and source, and the default (0) from 80 % of RAM."""
    monkeypatch.setattr(embedded_pool.os, "sysconf", lambda name: 2**20 if name == "SC_PHYS_PAGES" else 2**15)
    ram = 2**35  # 32 GiB
    store = tmp_path / "graph"
    assert embedded_pool.writer_buffer_pool(store, 1000) == embedded_pool.WRITER_POOL_FLOOR
    store.write_bytes(b"x" * 100)
    assert embedded_pool.writer_buffer_pool(store, 100 * MiB) == 64 * (100 * MiB + 100)
    assert embedded_pool.writer_buffer_pool(store, int(0.8 * ram) // 64) == 0
    assert embedded_pool.short_of_headroom(10 * MiB, 4 * 2**30) is False
    assert embedded_pool.short_of_headroom(1024 * MiB, 4 * 2**30) is True
    assert embedded_pool.short_of_headroom(10**12, 0) is False  # the default pool: nothing to widen to
