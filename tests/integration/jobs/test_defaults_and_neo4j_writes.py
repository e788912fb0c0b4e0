"""Defaults users expect (issue 10): the data dir is never the current folder, and an ingest
into a Neo4j that is down fails within the configured timeout with a coded error."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeNeo4jResult
from graphtune.server.settings import Settings, load_settings
from graphtune.tools.errors import GraphUnavailable
from graphtune.tools.graph.ingest import IngestParams, run_ingest
from graphtune.tools.graph.neo4j_store import record_query

DEAD = "bolt://127.0.0.1:1"


def test_data_dir_defaults_to_the_platform_user_data_dir_not_the_cwd(monkeypatch, tmp_path: Path) -> None:
    import platformdirs

    asked = []

    def user_data_dir(appname: str, *args: Any, **kwargs: Any) -> str:
        asked.append(appname)
        return str(tmp_path / "user-data" / appname)

    monkeypatch.delenv("GRAPHTUNE_HOME", raising=False)
    monkeypatch.setattr(platformdirs, "user_data_dir", user_data_dir)
    (tmp_path / "client-started-here").mkdir()
    monkeypatch.chdir(tmp_path / "client-started-here")
    settings = load_settings(home=None)
    assert settings.home == (tmp_path / "user-data" / "graphtune").resolve() and asked == ["graphtune"]
    assert settings.datasets_dir.parent == settings.home and settings.db_path.is_relative_to(settings.home)
    assert not str(settings.home).startswith(str(Path.cwd()))

    monkeypatch.setenv("GRAPHTUNE_HOME", str(tmp_path / "from-env"))
    assert Settings().home == (tmp_path / "from-env").resolve()  # the env var wins over the default
    assert load_settings(home=tmp_path / "flag").home == (tmp_path / "flag").resolve()  # and a flag over both


def test_the_real_default_is_a_user_data_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GRAPHTUNE_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    home = Settings().home
    assert home.name == "graphtune" and home != tmp_path.resolve() and not home.is_relative_to(tmp_path.resolve())


@pytest.mark.parametrize("uri", [DEAD, "neo4j://127.0.0.1:1"])
def test_ingest_into_a_dead_neo4j_fails_within_the_timeout(tmp_path: Path, uri: str) -> None:
    settings = Settings(home=tmp_path / "home", neo4j_uri=uri, neo4j_password="x", neo4j_timeout_s=1)
    settings.ensure_dirs()
    started = time.monotonic()
    with pytest.raises(GraphUnavailable) as info:
        run_ingest(IngestParams(package="json", write_to="neo4j"), settings)
    assert time.monotonic() - started < settings.neo4j_timeout_s + 2
    assert str(info.value).startswith("[graph_unavailable]") and info.value.field == "NEO4J_URI"


@pytest.mark.anyio
async def test_ingest_tool_refuses_a_dead_neo4j_before_queueing(client, services) -> None:
    services.settings.neo4j_uri, services.settings.neo4j_timeout_s = DEAD, 1
    started = time.monotonic()
    result = await client.call_tool("ingest_codebase", {"package": "json", "write_to": "neo4j"})
    assert time.monotonic() - started < 3
    assert result.is_error and "[graph_unavailable]" in result.content[0].text
    assert services.store.list()[1] == 0


class _RecordingDriver:
    """Stand-in async driver: logs every query, answers counts with 0, a query containing a key of
    `answers` with its rows, and other reads with nothing."""

    def __init__(self, answers: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.queries: list[tuple[str, dict[str, Any]]] = []
        self.answers = answers or {}

    async def verify_connectivity(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def session(self, database: str):  # noqa: ANN201
        driver = self

        class _Tx:
            async def run(self, query: str, params: dict[str, Any] | None = None, **kwargs: Any) -> FakeNeo4jResult:
                driver.queries.append((query, params or {}))
                for key, rows in driver.answers.items():
                    if key in query:
                        return FakeNeo4jResult(rows)
                return FakeNeo4jResult([{"c": 0}] if "count(" in query and "codebase AS cb" not in query else [])

        class _Session:
            async def __aenter__(self):  # noqa: ANN204
                return self

            async def __aexit__(self, *exc: Any) -> bool:
                return False

            async def execute_write(self, work):  # noqa: ANN001, ANN202
                return await work(_Tx())

            execute_read = execute_write

        return _Session()


def test_neo4j_writer_scopes_every_change_to_its_code_base(monkeypatch, tmp_path: Path) -> None:
    driver = _RecordingDriver()
    result = _ingest_into(driver, monkeypatch, tmp_path)
    assert result["codebase"] == "proj" and result["files_parsed"] == 1
    changes = [(q, p) for q, p in driver.queries if "DELETE" in q or "SET" in q]
    assert changes
    for query, params in changes:
        scoped = "$cb" in query and params.get("cb") == "proj"
        merged = "MERGE (n:" in query and all(r["codebase"] == "proj" and r["uid"].startswith("proj:")
                                                for r in params["rows"])
        codebase_node = "MERGE (c:CodeBase {name: $cb})" in query
        assert scoped or merged or codebase_node, query
    edges = [p for q, p in driver.queries if "MERGE (a)-[:DEFINES]->(b)" in q or "IMPLEMENTS_PATTERN]->(b)" in q]
    assert len(edges) == 2
    assert all(r["a"].startswith("proj:") and r["b"].startswith("proj:") for p in edges for r in p["rows"])
    assert any("REQUIRE n.uid IS UNIQUE" in q for q, _ in driver.queries)


def test_neo4j_extraction_filters_by_code_base() -> None:
    from graphtune.tools.graph.mapping import GraphMapping

    for node_type in ("Method", "Function", "Class", "CodeFile", "Pattern"):
        plain, scoped = record_query(node_type, GraphMapping()), record_query(node_type, GraphMapping(), True)
        assert "$codebases" not in plain and "n.`codebase` IN $codebases" in scoped


def _ingest_into(driver: _RecordingDriver, monkeypatch, tmp_path: Path,
                 files: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Ingest `files` (default: one small module) from tmp_path/proj into the recording Neo4j driver."""
    from graphtune.tools.graph import neo4j_writer

    monkeypatch.setattr(neo4j_writer, "make_driver", lambda settings: driver)
    settings = Settings(home=tmp_path / "home", neo4j_uri="neo4j://db:7687")
    settings.ensure_dirs()
    code = tmp_path / "proj"
    code.mkdir(exist_ok=True)
    for name, data in (files or {"a.py": b"def f():\n    return g()\n\ndef g():\n    yield 1\n"}).items():
        (code / name).write_bytes(data)
    return run_ingest(IngestParams(path=str(code), write_to="neo4j"), settings)


def test_a_neo4j_ingest_marks_its_code_base_unfinished_until_its_last_write(monkeypatch, tmp_path: Path) -> None:
    """Neo4j commits each statement batch: the code base is marked on its CodeBase node before the
    first node is written and unmarked by the ingest's last write, so a killed ingest stays marked."""
    driver = _RecordingDriver()
    result = _ingest_into(driver, monkeypatch, tmp_path)
    queries = [q for q, _ in driver.queries]
    marked = next(i for i, q in enumerate(queries) if "SET c.unfinished = $mark" in q)
    first_node = next(i for i, q in enumerate(queries) if "MERGE (n:" in q)
    writes = [i for i, q in enumerate(queries) if "MERGE" in q or "DELETE" in q or "SET" in q]
    assert marked < first_node
    assert "REMOVE c.unfinished" in queries[writes[-1]]  # the very last write clears the mark
    assert "repaired" not in result


def test_a_neo4j_ingest_where_no_file_parses_writes_nothing_for_its_code_base(monkeypatch, tmp_path: Path) -> None:
    """The refusal (nothing parsed) comes before the ingest's first write: the unfinished mark, a MERGE of
    the CodeBase node, is set only then, so the code base does not exist afterwards, marked or not."""
    from graphtune.tools.errors import ConfigError

    driver = _RecordingDriver()
    with pytest.raises(ConfigError) as caught:
        _ingest_into(driver, monkeypatch, tmp_path, {"binary.py": b"\x00\x01\x02 def (\n"})
    assert "could be parsed" in caught.value.message and caught.value.field == "path"
    writes = [q for q, p in driver.queries if any(w in q for w in ("MERGE", "SET", "DELETE", "CREATE ("))]
    assert not writes, writes  # (the store-wide uid constraints of Neo4jWriter's start are not the code base's)
    assert not any(p.get("cb") == "proj" for q, p in driver.queries if "MATCH" not in q)


def test_a_neo4j_ingest_rebuilds_a_code_base_left_unfinished(monkeypatch, tmp_path: Path) -> None:
    driver = _RecordingDriver({"c.unfinished IS NOT NULL RETURN c.name AS n": [{"n": "proj"}]})
    result = _ingest_into(driver, monkeypatch, tmp_path)
    assert result["repaired"] is True
    queries = [q for q, _ in driver.queries]
    emptied = [i for i, q in enumerate(queries) if "WHERE n.codebase = $cb DETACH DELETE n" in q]
    first_node = next(i for i, q in enumerate(queries) if "MERGE (n:" in q)
    assert len(emptied) >= 5 and max(emptied) < first_node  # every node of it removed before loading


def test_neo4j_extraction_refuses_a_code_base_left_unfinished(monkeypatch) -> None:
    import json

    from graphtune.tools.errors import CodebaseIncomplete
    from graphtune.tools.graph import neo4j_store

    mark = json.dumps({"root": "/src/proj", "job_id": "job_1", "started_at": "2026-12-04T10:00:00Z"})
    driver = _RecordingDriver({"c.unfinished IS NOT NULL": [{"n": "proj", "u": mark}],
                               "RETURN DISTINCT": [{"c": "proj"}, {"c": "other"}]})
    monkeypatch.setattr(neo4j_store, "make_driver", lambda settings: driver)
    settings = Settings(neo4j_uri="neo4j://db:7687")
    with pytest.raises(CodebaseIncomplete) as caught:
        neo4j_store.Neo4jSource(settings)
    assert "`proj` in Neo4j" in caught.value.message and "job job_1" in caught.value.message
    assert "write_to='neo4j'" in caught.value.hint
    neo4j_store.Neo4jSource(settings, codebases=["other"]).close()  # the other code base still reads
