"""Storage faults and the Neo4j error boundary."""

from __future__ import annotations

import asyncio
import shutil

import pytest
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
