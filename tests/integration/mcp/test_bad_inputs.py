"""Bad inputs found by a sweep of every tool (2026-12-05) that used to end in an internal error or a
misleading one: each now gets a coded error naming the field, short enough to read, and nothing is written."""

from __future__ import annotations

import pytest
from conftest import wait_final
from graphtune.server.job_store import JobStatus


def _error(result) -> str:  # noqa: ANN001
    assert result.is_error, result.structured_content
    text = result.content[0].text
    assert "Error executing tool" not in text, text  # an internal error: no code, field or hint
    assert len(text) < 1200, text  # a 10k-character argument is not echoed back whole
    return text


@pytest.mark.anyio
async def test_names_too_long_for_the_file_system_are_refused_by_the_name_rules(client) -> None:
    for tool, args, field in (("delete_model", {"model_name": "a" * 300}, "model_name"),
                              ("evaluate_model", {"model_name": "a" * 300}, "model_name"),
                              ("start_fine_tuning", {"dataset_name": "a" * 300, "base_model": "smollm2-135m-instruct",
                                                     "dry_run": True}, "dataset_name"),
                              ("ingest_codebase", {"path": "a" * 10_000}, "path"),
                              ("ingest_codebase", {"path": "~no-such-user-here/x"}, "path")):
        assert field in _error(await client.call_tool(tool, args)), (tool, field)


@pytest.mark.anyio
async def test_broken_datasets_are_reported_not_crashed_on(client, services) -> None:
    root = services.settings.datasets_dir
    for name, files in (("nosplit", {"metadata.json": "{}"}),
                        ("badline", {"metadata.json": "{}", "train.jsonl": '{"messages": []}\n{not json\n'}),
                        ("badmeta", {"metadata.json": "{oops", "train.jsonl": '{"messages": []}\n'}),
                        ("listline", {"metadata.json": "{}", "train.jsonl": '{"messages": []}\n[1, 2]\n'})):
        (root / name).mkdir(parents=True)
        for file, text in files.items():
            (root / name / file).write_text(text)
    assert "train split" in _error(await client.call_tool("preview_dataset", {"dataset_name": "nosplit"}))
    text = _error(await client.call_tool("preview_dataset", {"dataset_name": "badline", "split": "eval"}))
    assert "no eval split" in text and "`split`" in text
    assert "line 2" in _error(await client.call_tool("preview_dataset", {"dataset_name": "badline"}))
    text = _error(await client.call_tool("preview_dataset", {"dataset_name": "listline"}))
    assert "dataset_invalid" in text and "line 2" in text and "`dataset_name`" in text and "records" not in text
    text = _error(await client.call_tool("start_fine_tuning", {"dataset_name": "badmeta", "dry_run": True,
                                                               "base_model": "smollm2-135m-instruct"}))
    assert "dataset_invalid" in text and "metadata.json" in text
    text = _error(await client.call_tool("preview_dataset", {"dataset_name": "badmeta", "include_metadata": True}))
    assert "dataset_invalid" in text and "metadata.json" in text and "`dataset_name`" in text
    text = _error(await client.call_tool("extract_training_data", {"dataset_name": "delta", "since": "badmeta",
                                                                   "objective": "knowledge"}))
    assert "dataset_invalid" in text and "metadata.json" in text and "`since`" in text
    (root / "oddtypes").mkdir()  # hand-edited: values of other types, and a metadata.json that is no object
    (root / "oddtypes" / "metadata.json").write_text('{"train_examples": "many", "source": [1], "probes": true}')
    (root / "listmeta").mkdir()
    (root / "listmeta" / "metadata.json").write_text("[1, 2]")
    listing = await client.call_tool("list_datasets", {"limit": 100})
    assert not listing.is_error, listing.content[0].text
    entries = {d["name"]: d for d in listing.structured_content["datasets"]}
    assert "not valid JSON" in entries["badmeta"]["problem"] and "not a JSON object" in entries["listmeta"]["problem"]
    assert entries["oddtypes"]["problem"] is None and entries["oddtypes"]["train_examples"] is None
    assert entries["nosplit"]["problem"] is None


@pytest.mark.anyio
async def test_huge_offsets_give_an_empty_page(client) -> None:
    page = await client.call_tool("list_jobs", {"offset": 2**63})
    assert not page.is_error and page.structured_content["jobs"] == []


@pytest.mark.anyio
async def test_a_name_that_reads_as_a_file_path_is_refused_when_it_is_made(client, services, tmp_path) -> None:
    text = _error(await client.call_tool("extract_training_data", {"dataset_name": "dup.jsonl"}))
    assert "dataset_name" in text and "'dup'" in text
    data = tmp_path / "rows.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n')
    text = _error(await client.call_tool("start_fine_tuning", {"dataset_name": str(data), "dry_run": True,
                                                               "base_model": "smollm2-135m-instruct",
                                                               "output_name": "m.gguf"}))
    assert "output_name" in text and "'m'" in text
    old = services.settings.datasets_dir / "old.jsonl"  # made before the rule: still reachable by its name
    old.mkdir(parents=True)
    (old / "metadata.json").write_text("{}")
    (old / "train.jsonl").write_text('{"messages": []}\n')
    assert not (await client.call_tool("preview_dataset", {"dataset_name": "old.jsonl"})).is_error


@pytest.mark.anyio
async def test_a_new_model_name_ending_in_gguf_is_refused_the_same_way_by_every_tool(client, services,
                                                                                       tmp_path) -> None:
    """start_fine_tuning's output_name, merge_adapter's output_name and promote_model's alias share one rule
    (names.check_new_model_name): the same code, message and field, each with its own hint."""
    from test_model_registry import fake_model

    fake_model(services.settings, "m1")
    data = tmp_path / "rows.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n')
    said = "ends in .gguf, and a name like that is read as a file path where it is used; drop the suffix (e.g. 'm')"
    for tool, args, field, code, hint in (
            ("start_fine_tuning", {"dataset_name": str(data), "dry_run": True, "base_model": "smollm2-135m-instruct",
                                   "output_name": "m.gguf"}, "output_name", "invalid_training_config",
             "Hint: e.g. output_name='mylib-lora-r16'."),
            ("merge_adapter", {"model_name": "m1", "output_name": "m.gguf"}, "output_name", "invalid_argument", None),
            ("promote_model", {"model_name": "m1", "alias": "m.gguf"}, "alias", "invalid_argument",
             "Hint: e.g. alias='current'.")):
        text = _error(await client.call_tool(tool, args))
        assert f"[{code}] `{field}`='m.gguf' {said}" in text, (tool, text)
        assert (hint in text) if hint else "Hint" not in text, (tool, text)
    assert services.store.list()[1] == 0 and services.store.aliases() == {}


@pytest.mark.anyio
async def test_base_model_errors_say_what_the_value_is(client, tmp_path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    data = tmp_path / "rows.jsonl"  # a usable dataset, so that base_model is what is checked
    data.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n')
    for value, says in (("", "is empty"), ("  ", "is empty"), (str(notes), "is a file, not a model")):
        text = _error(await client.call_tool("start_fine_tuning", {"dataset_name": str(data), "base_model": value,
                                                                   "dry_run": True}))
        assert "base_model" in text and says in text, (value, text)


def test_an_ingest_where_no_file_parses_fails_and_leaves_no_code_base(services, tmp_path) -> None:
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "binary.py").write_bytes(b"\x00\x01\x02 def (\n")
    job = services.runner.submit("ingest", {"path": str(folder)})
    final = wait_final(services.store, job.id)
    assert final.status is JobStatus.FAILED and final.error["field"] == "path", final.error
    assert "could be parsed" in final.error["message"] and "binary.py" in final.error["message"]
    from graphtune.tools.graph.embedded import EmbeddedGraph

    if services.settings.graph_dir.exists():  # the store may have been created; no code base is in it
        with EmbeddedGraph(services.settings.graph_dir, read_only=True) as graph:
            assert not list(graph.rows("MATCH (c:CodeBase) RETURN c.name"))


@pytest.mark.anyio
async def test_a_model_that_cannot_be_loaded_is_refused_before_a_job_is_queued(client, services) -> None:
    folder = services.settings.models_dir / "by-hand"  # an adapter copied in without training_metadata.json
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    for tool, args, field in (("evaluate_model", {"model_name": "by-hand", "dataset_name": "x"}, "model_name"),
                              ("compare_models", {"model_a": "by-hand", "model_b": "other", "dataset_name": "x"},
                               "model_a"),
                              ("merge_adapter", {"model_name": "by-hand"}, "model_name"),
                              ("export_model", {"model_name": "by-hand"}, "model_name")):
        text = _error(await client.call_tool(tool, args))
        assert field in text and "training_metadata.json" in text, (tool, text)
    (folder / "training_metadata.json").write_text('{"base_model": "smollm2-135m-instruct"}')
    text = _error(await client.call_tool("evaluate_model", {"model_name": "by-hand"}))
    assert "dataset_name" in text and "records no dataset" in text
    assert services.store.list(limit=5)[0] == []  # nothing was queued


@pytest.mark.anyio
async def test_reading_neo4j_without_neo4j_uri_is_refused_up_front(client, services) -> None:
    assert not services.settings.neo4j_uri
    for tool, args in (("extract_training_data", {"dataset_name": "n", "source": "neo4j"}),
                       ("graph_diff", {"codebase": "x", "source": "neo4j"})):
        text = _error(await client.call_tool(tool, args))
        assert "`source`='neo4j'" in text and "NEO4J_URI is not set" in text, (tool, text)
    assert services.store.list(limit=5)[0] == []


@pytest.mark.anyio
async def test_graph_diff_reads_recorded_neo4j_versions_without_neo4j_uri(client, services, tmp_path) -> None:
    """graph_diff reads the version files on disk, not the Neo4j server: versions recorded while
    NEO4J_URI was set stay readable after it is unset."""
    import shutil

    from graphtune.tools.graph.ingest import IngestParams, run_ingest
    from graphtune.tools.graph.versions import versions_root

    settings = services.settings
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "m.py").write_text("def f():\n    return 1\n")
    run_ingest(IngestParams(path=str(tmp_path / "code"), codebase="code"), settings)
    shutil.copytree(versions_root(settings, "embedded") / "code", versions_root(settings, "neo4j") / "code")
    diff = await client.call_tool("graph_diff", {"codebase": "code", "source": "neo4j"})
    assert not diff.is_error, diff.content[0].text
    assert diff.structured_content["added"] >= 1


@pytest.mark.anyio
async def test_a_new_model_cannot_take_an_alias_name(client, services, tmp_path) -> None:
    from test_model_registry import fake_model

    fake_model(services.settings, "m1")
    services.store.set_alias("current", "m1")
    data = tmp_path / "rows.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n')
    for tool, args in (("merge_adapter", {"model_name": "m1", "output_name": "current"}),
                       ("start_fine_tuning", {"dataset_name": str(data), "base_model": "smollm2-135m-instruct",
                                              "output_name": "current", "dry_run": True})):
        text = _error(await client.call_tool(tool, args))
        assert "output_name" in text and "alias" in text, (tool, text)


@pytest.mark.anyio
async def test_an_argument_to_a_tool_without_parameters_is_refused_plainly(client) -> None:
    text = _error(await client.call_tool("validate_environment", {"verbose": True}))
    assert "'verbose'" in text and "takes no parameters" in text, text


@pytest.mark.anyio
async def test_delete_refuses_a_model_a_queued_ask_job_loads(client, services) -> None:
    services.runner.dispatch = lambda: []  # type: ignore[method-assign]  # keep the jobs queued
    folder = services.settings.models_dir / "m1-merged"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    services.runner.submit("ask", {"base_model": str(folder), "merged": "m1-merged", "prompt": "q"})
    text = _error(await client.call_tool("delete_model", {"model_name": "m1-merged"}))
    assert "job_" in text and folder.is_dir()
