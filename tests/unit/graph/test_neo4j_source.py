"""The Neo4j query layer (no server needed) and its failure modes against closed ports."""

from __future__ import annotations

import time

import pytest
from graphtune.server.settings import Settings
from graphtune.tools.errors import ConfigError, GraphUnavailable
from graphtune.tools.graph.mapping import GraphMapping
from graphtune.tools.graph.neo4j_store import Neo4jSource, record_query, to_record

INJECTIONS = ["Method`) DETACH DELETE n //", "}) MATCH (n) DETACH DELETE n //", "a b", "x'y", "", "1abc", "n;DROP"]


@pytest.mark.parametrize("node_type", ["Method", "Function", "Class", "CodeFile", "Pattern"])
def test_queries_use_parameters_and_quoted_identifiers(node_type: str) -> None:
    query = record_query(node_type, GraphMapping())
    assert "$after" in query and "$batch" in query
    assert f"(n:`{node_type}`)" in query
    assert "'" not in query  # no literal values in query text


@pytest.mark.parametrize("bad", INJECTIONS)
def test_hostile_names_in_the_mapping_are_rejected(bad: str) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        GraphMapping(labels={"Method": bad})
    with pytest.raises(ConfigError, match="mapping"):
        GraphMapping(properties={"docstring": bad})


def test_custom_mapping_renames_labels_and_properties() -> None:
    mapping = GraphMapping(labels={"Method": "Fn"}, properties={"docstring": "doc", "key": "fqn"},
                           relationships={"CALLS": "INVOKES"})
    query = record_query("Method", mapping)
    assert "(n:`Fn`)" in query and "n.`doc` AS docstring" in query and "[:`INVOKES`]" in query


def test_rows_become_records_with_lists() -> None:
    record = to_record("Method", {"eid": "4:x:1", "key": "a.B.c", "name": "c", "file_path": None, "docstring": "d",
                                  "signature": "def c(self)", "parameters": ["self"], "return_type": None,
                                  "source": "def c(self): ...", "class_name": "a.B", "calls": ["a.f"], "called_by": []})
    assert record.key == "a.B.c" and record.file_path == "" and record.calls == ["a.f"] and record.class_name == "a.B"


def test_unreachable_server_fails_fast_with_a_clear_error() -> None:
    settings = Settings(neo4j_uri="neo4j://127.0.0.1:1", neo4j_password="x", neo4j_timeout_s=2)
    started = time.monotonic()
    with pytest.raises(GraphUnavailable, match="unreachable") as info:
        Neo4jSource(settings)
    assert time.monotonic() - started < 20
    assert info.value.field == "NEO4J_URI"


def test_missing_uri_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="NEO4J_URI"):
        Neo4jSource(Settings())


@pytest.mark.anyio
async def test_validate_environment_reports_unreachable_neo4j_without_hanging(tmp_path) -> None:
    from graphtune.tools.graph.neo4j_store import check_neo4j

    settings = Settings(home=tmp_path, neo4j_uri="neo4j://127.0.0.1:1", neo4j_password="x", neo4j_timeout_s=1)
    started = time.monotonic()
    check = await check_neo4j(settings)
    assert not check.ok and check.fix and time.monotonic() - started < 15
