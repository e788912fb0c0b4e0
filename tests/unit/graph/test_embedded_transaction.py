"""EmbeddedGraph.transaction nests: an inner group joins the outer one, so the ingest's last
steps (last batch, derived edges, CodeBase node) commit once, and fail as one."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphtune.tools.graph.embedded import EmbeddedGraph


def _names(graph: EmbeddedGraph) -> list[str]:
    return sorted(row[0] for row in graph.rows("MATCH (c:CodeBase) RETURN c.name"))


def test_an_inner_transaction_joins_the_outer_one(tmp_path: Path) -> None:
    with EmbeddedGraph(tmp_path / "g", read_only=False) as graph:
        with pytest.raises(RuntimeError), graph.transaction():
            with graph.transaction():
                graph.execute("CREATE (:CodeBase {name: 'inner'})")
            assert _names(graph) == ["inner"]  # visible inside, not committed yet
            raise RuntimeError("a later step fails")
        assert _names(graph) == []  # the inner group went with the outer one
        with graph.transaction():
            with graph.transaction():
                graph.execute("CREATE (:CodeBase {name: 'kept'})")
            graph.execute("CREATE (:CodeBase {name: 'too'})")
    with EmbeddedGraph(tmp_path / "g", read_only=True) as graph:
        assert _names(graph) == ["kept", "too"]


def test_a_failed_inner_group_caught_inside_the_outer_one_is_not_committed(tmp_path: Path) -> None:
    from graphtune.tools.errors import QueryFailed

    with EmbeddedGraph(tmp_path / "g", read_only=False) as graph:
        with pytest.raises(QueryFailed, match="nested group"), graph.transaction():
            try:
                with graph.transaction():
                    graph.execute("CREATE (:CodeBase {name: 'half'})")
                    raise RuntimeError("the inner group fails after a write")
            except RuntimeError:
                pass  # a caller that swallows it must not get half a group committed
        assert _names(graph) == []
        with graph.transaction():  # the store is usable afterwards
            graph.execute("CREATE (:CodeBase {name: 'next'})")
        assert _names(graph) == ["next"]


def test_a_deferred_checkpoint_runs_beside_other_work_and_close_waits_for_it(tmp_path: Path) -> None:
    """The ingest's last commit leaves its checkpoint to a thread (started after the store's last
    read): the commit is kept, and close() returns only once the checkpoint is done."""
    with EmbeddedGraph(tmp_path / "g", read_only=False) as graph:
        graph.defer_checkpoint()
        with graph.transaction():
            graph.execute("UNWIND range(1, 2000) AS i CREATE (:CodeBase {name: 'cb' + string(i)})")
        assert len(_names(graph)) == 2000  # committed and readable before any checkpoint
        graph.checkpoint_in_background()
        running = graph._checkpoint
        graph.checkpoint_in_background()  # a second call does not start another
        assert graph._checkpoint is running is not None
        assert len(_names(graph)) == 2000  # the next query waits for the checkpoint
        assert running.done() and graph._checkpoint is None
    with EmbeddedGraph(tmp_path / "g", read_only=True) as graph:
        assert len(_names(graph)) == 2000


def test_a_failed_background_checkpoint_is_raised_by_close_and_the_commit_survives(tmp_path: Path) -> None:
    from graphtune.tools.errors import QueryFailed

    graph = EmbeddedGraph(tmp_path / "g", read_only=False)
    graph.defer_checkpoint()
    with graph.transaction():
        graph.execute("CREATE (:CodeBase {name: 'kept'})")
    real = graph.conn

    class FailingCheckpoint:
        """The connection, except that CHECKPOINT fails (as a full disk would make it)."""

        def execute(self, cypher: str, params: dict | None = None) -> object:
            if cypher == "CHECKPOINT":
                raise RuntimeError("simulated checkpoint failure")
            return real.execute(cypher, params or {})

        def close(self) -> None:
            real.close()

    graph.conn = FailingCheckpoint()  # type: ignore[assignment]
    graph.checkpoint_in_background()
    with pytest.raises(QueryFailed, match="simulated"):
        graph.close()
    with EmbeddedGraph(tmp_path / "g", read_only=True) as reopened:  # the store was closed: no lock left
        assert _names(reopened) == ["kept"]  # the commit was in the WAL


def test_whole_graph_counts_equal_one_count_per_table(tmp_path: Path) -> None:
    """counts() of the whole graph uses two grouped scans: the same numbers, empty tables as 0."""
    from graphtune.tools.graph.schema import NODE_TABLES, REL_TABLES

    with EmbeddedGraph(tmp_path / "g", read_only=False) as graph:
        assert graph.counts() == dict.fromkeys([*NODE_TABLES, *REL_TABLES], 0)
        graph.execute("CREATE (:CodeFile {uid: 'cb:a.py', codebase: 'cb', path: 'a.py'}), "
                      "(:CodeFile {uid: 'cb:b.py', codebase: 'cb', path: 'b.py'}), (:CodeBase {name: 'cb'})")
        graph.execute("MATCH (a:CodeFile), (b:CodeFile) WHERE a.path = 'a.py' AND b.path = 'b.py' "
                      "CREATE (a)-[:IMPORTS]->(b)")
        one_each = {t: next(graph.rows(f"MATCH (n:{t}) RETURN count(n)"))[0] for t in NODE_TABLES}
        one_each |= {r: next(graph.rows(f"MATCH ()-[e:{r}]->() RETURN count(e)"))[0] for r in REL_TABLES}
        assert graph.counts() == one_each and one_each["CodeFile"] == 2 and one_each["IMPORTS"] == 1
        assert list(graph.counts()) == [*NODE_TABLES, *REL_TABLES]
