"""Storage faults and the Neo4j error boundary."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from conftest import FakeNeo4jResult
from graphtune.server.settings import Settings
from graphtune.tools.dataset.extract import run_extract
from graphtune.tools.dataset.params import ExtractParams
from graphtune.tools.environment import folder_check
from graphtune.tools.errors import (
    GraphError,
    GraphUnavailable,
    QueryFailed,
    StorageError,
)
from graphtune.tools.graph.ingest import IngestParams, run_ingest
from graphtune.tools.graph.neo4j_store import map_neo4j_errors
from neo4j import exceptions as ne

DRIVER_ERRORS = [
    (ne.AuthError("bad password"), GraphUnavailable, "NEO4J_PASSWORD"),
    (ne.ServiceUnavailable("connection refused"), GraphUnavailable, "NEO4J_URI"),
    (ne.SessionExpired("dropped"), GraphError, None),
    (asyncio.TimeoutError(), QueryFailed, None),
    (ne.TransientError("deadlock"), QueryFailed, None),
    (ne.DriverError("closed"), GraphError, None),
]


@pytest.mark.parametrize(("raised", "expected", "field"), DRIVER_ERRORS)
def test_every_driver_failure_maps_to_a_graph_error(raised, expected, field) -> None:
    settings = Settings(neo4j_uri="neo4j://db:7687")
    with pytest.raises(expected) as info, map_neo4j_errors(settings):
        raise raised
    assert info.value.__cause__ is raised
    if field:
        assert info.value.field == field


def test_missing_database_names_the_setting() -> None:
    error = ne.Neo4jError._hydrate_neo4j(code="Neo.ClientError.Database.DatabaseNotFound", message="no such db")
    with pytest.raises(GraphUnavailable) as info, map_neo4j_errors(Settings(neo4j_database="nope")):
        raise error
    assert info.value.field == "NEO4J_DATABASE"


def test_unwritable_dataset_folder_fails_the_job_cleanly(settings: Settings) -> None:
    settings.ensure_dirs()
    run_ingest(IngestParams(package="json"), settings)
    shutil.rmtree(settings.datasets_dir)
    settings.datasets_dir.write_text("not a folder")  # root ignores permission bits; a file cannot be written into
    with pytest.raises(StorageError, match="cannot create"):
        run_extract(ExtractParams(dataset_name="x", max_records=100), settings)
    assert settings.datasets_dir.is_file()


def test_validate_reports_an_unwritable_folder(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    check = folder_check("datasets", blocker / "datasets")
    assert not check.ok and check.fix


@pytest.mark.anyio
async def test_nearly_full_disk_is_refused_before_queueing(client, services, monkeypatch) -> None:
    import collections

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
    result = await client.call_tool("extract_training_data", {"dataset_name": "full-disk"})
    assert result.is_error and "[storage_error]" in result.content[0].text and "GiB free" in result.content[0].text
    assert services.store.list()[1] == 0


class _FlakyDriver:
    """A stand-in async driver whose connection drops after the first page of results."""

    def __init__(self, settings, rows_per_page: int) -> None:  # noqa: ANN001
        self.pages = 0
        self.rows_per_page = rows_per_page

    async def verify_connectivity(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def session(self, database: str):  # noqa: ANN201
        driver = self

        class _Session:
            async def __aenter__(self):  # noqa: ANN204
                return self

            async def __aexit__(self, *exc):  # noqa: ANN002, ANN204
                return False

            async def execute_read(self, work):  # noqa: ANN001, ANN202
                if "count(n)" in getattr(work, "__qualname__", ""):
                    return [{"c": 5000}]
                return await work(_Tx())

        class _Tx:
            async def run(self, query: str, params: dict, timeout: float | None = None):  # noqa: ANN202
                if "c.unfinished" in query:  # no code base left unfinished: not a page
                    return FakeNeo4jResult([])
                driver.pages += 1
                if driver.pages > 2:
                    raise ne.ServiceUnavailable("connection to the server was lost")
                return FakeNeo4jResult([
                    {"eid": f"4:x:{driver.pages}:{i}", "key": f"m.f{driver.pages}_{i}", "name": "f",
                     "file_path": "m.py", "docstring": "Return the thing for the caller, documented well enough.",
                     "signature": "def f()", "parameters": [], "return_type": "int", "source": "def f():\n  return 1",
                     "class_name": None, "calls": [], "called_by": []} for i in range(driver.rows_per_page)])

        return _Session()


def test_neo4j_dropping_mid_extraction_fails_the_job_with_a_code_and_no_dataset(settings, monkeypatch) -> None:
    from graphtune.tools.graph import neo4j_store

    settings.ensure_dirs()
    settings.neo4j_uri = "neo4j://db:7687"
    monkeypatch.setattr(neo4j_store, "make_driver", lambda s: _FlakyDriver(s, neo4j_store.BATCH))
    monkeypatch.setattr(neo4j_store.Neo4jSource, "count", lambda self, node_type: 5000)
    with pytest.raises(GraphUnavailable, match="unreachable") as info:
        run_extract(ExtractParams(dataset_name="from-neo4j", source="neo4j", node_types=["Function"]), settings)
    assert info.value.field == "NEO4J_URI"
    assert not (settings.datasets_dir / "from-neo4j").exists()
    assert not list(settings.datasets_dir.glob(".tmp-*"))


def test_disk_full_in_the_middle_of_writing_a_dataset_publishes_nothing(settings, monkeypatch) -> None:
    import errno

    from graphtune.tools.dataset import extract

    settings.ensure_dirs()
    run_ingest(IngestParams(package="json"), settings)
    real_write = extract.write_jsonl

    def write_then_fill_the_disk(path, rows):  # noqa: ANN001, ANN202
        real_write(path, rows[: len(rows) // 2])  # half the file lands, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(extract, "write_jsonl", write_then_fill_the_disk)
    with pytest.raises(StorageError, match="disk full") as info:
        run_extract(ExtractParams(dataset_name="full", max_records=100), settings)
    assert info.value.field == "dataset_name"
    assert list(settings.datasets_dir.iterdir()) == []  # neither the dataset nor a temp folder
