"""Hostile input: fuzzed tool arguments, path escapes, malformed datasets, corrupt checkpoints."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from graphtune.tools.errors import DatasetInvalid, DatasetNotFound
from graphtune.tools.training.data_files import read_conversations
from graphtune.tools.training.engine import newest_checkpoint
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

NASTY_NAMES = ["../escape", "..", "/etc/passwd", "a/b", "a\x00b", "ﬁle", "ＡＢＣ", "a" * 200, "a" * 300, "", " ", "CON",
               "name\n", "-rf", ".hidden", "é", "a..b"]
ANY_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.sampled_from([2**63, -(2**63), 10**30])
                        | st.floats(allow_nan=False) | st.text(max_size=30),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                     max_size=3), max_leaves=6)
TOOLS_ARGS = {
    "get_training_status": ["job_id", "detail", "after_event_id"],
    "list_jobs": ["status", "kind", "limit", "offset"],
    "cancel_job": ["job_id", "force"],
    "ingest_codebase": ["path", "package", "exclude", "write_to"],
    "extract_training_data": ["dataset_name", "node_types", "max_records", "quality_threshold",
                              "augmentation_factor", "eval_fraction", "output_format"],
    "list_datasets": ["limit", "offset"],
    "preview_dataset": ["dataset_name", "split", "offset", "limit"],
    "start_fine_tuning": ["dataset_name", "base_model", "method", "lora_rank", "learning_rate", "batch_size",
                          "target_modules", "output_name", "device"],
    "resume_fine_tuning": ["job_id"],
    "list_models": ["limit", "offset"],
    "merge_adapter": ["model_name", "output_name"],
    "graph_diff": ["codebase", "since", "change", "limit", "offset"],
    "promote_model": ["model_name", "alias"],
    "delete_model": ["model_name", "force"],
    "compare_models": ["model_a", "model_b", "dataset_name", "max_probes"],
}


@pytest.fixture
def quiet_services(services):
    """Jobs are recorded but never started: the fuzzer must not spawn hundreds of workers."""
    services.runner.dispatch = lambda: []  # type: ignore[method-assign]
    return services


@pytest.mark.anyio
@pytest.mark.parametrize("tool", sorted(TOOLS_ARGS))
async def test_fuzzed_arguments_never_crash_and_errors_name_a_field(tool, quiet_services, settings) -> None:
    from graphtune.server.app import create_app
    from mcp.client import Client

    app = create_app(settings, quiet_services)
    names = TOOLS_ARGS[tool]
    strategy = st.dictionaries(st.sampled_from(names + ["bogus_arg"]),
                               ANY_JSON | st.sampled_from(NASTY_NAMES), max_size=len(names))
    results = []

    @hsettings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(args=strategy)
    def collect(args):  # noqa: ANN001, ANN202
        results.append(args)

    collect()
    async with Client(app) as client:
        for args in results:
            result = await client.call_tool(tool, args)  # a protocol exception would fail the test here
            if result.is_error:
                text = result.content[0].text
                assert any(name in text for name in names + ["[", "validation"]), (tool, args, text)


@pytest.mark.anyio
@pytest.mark.parametrize("name", NASTY_NAMES)
async def test_names_cannot_escape_their_folders(client, services, name) -> None:
    for tool, arg in (("preview_dataset", "dataset_name"), ("extract_training_data", "dataset_name")):
        result = await client.call_tool(tool, {arg: name})
        assert result.is_error, (tool, name)
        assert "dataset_name" in result.content[0].text
    result = await client.call_tool("start_fine_tuning", {"dataset_name": "x", "base_model": "a/b", "output_name": name})
    assert result.is_error
    result = await client.call_tool("get_training_status", {"job_id": name})
    assert result.is_error and "job_id" in result.content[0].text
    assert not any(p.name.startswith("..") for p in services.settings.home.rglob("*"))


@pytest.mark.anyio
async def test_symlinks_planted_in_the_data_dir_are_not_followed(client, services, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "metadata.json").write_text("{}")
    (outside / "train.jsonl").write_text("")
    services.settings.datasets_dir.mkdir(parents=True, exist_ok=True)
    (services.settings.datasets_dir / "planted").symlink_to(outside, target_is_directory=True)
    assert (await client.call_tool("list_datasets", {})).structured_content["total"] == 0
    result = await client.call_tool("preview_dataset", {"dataset_name": "planted"})
    assert result.is_error and "[dataset_not_found]" in result.content[0].text


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_malformed_jsonl_is_reported_with_line_numbers(tmp_path) -> None:
    good = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}).encode()
    bad = _write(tmp_path / "bad.jsonl", [
        good,
        b"{not json",
        json.dumps({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "a"}]}).encode(),
        json.dumps({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}).encode(),
        json.dumps({"messages": [{"role": "user", "content": "q"}]}).encode(),
        b'{"text": "\xff\xfe not utf8"}',
        b'{"pad": "' + b"x" * 10_000_000 + b'"}',
        json.dumps({"instruction": "", "output": "a"}).encode(),
        json.dumps([1, 2]).encode(),
    ])
    with pytest.raises(DatasetInvalid) as info:
        read_conversations(bad)
    message = info.value.message
    for line in range(2, 10):
        assert f"line {line}:" in message
    assert "line 1:" not in message
    assert "UTF-8" in message and "bytes" in message and "role" in message


def test_empty_and_missing_datasets(tmp_path) -> None:
    with pytest.raises(DatasetInvalid, match="no records"):
        read_conversations(_write(tmp_path / "empty.jsonl", [b""]))
    from graphtune.tools.training.data_files import locate

    with pytest.raises(DatasetNotFound):
        locate(tmp_path, "nope")


def test_half_written_checkpoints_are_skipped_with_an_event(tmp_path) -> None:
    events = []
    good = tmp_path / "checkpoint-4"
    good.mkdir()
    (good / "trainer_state.json").write_text("{}")
    (good / "adapter_model.safetensors").write_bytes(b"x")
    (tmp_path / "checkpoint-8").mkdir()  # killed while saving: no trainer_state.json
    (tmp_path / "checkpoint-6").mkdir()
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text("{}")  # adapter missing
    chosen = newest_checkpoint(tmp_path, lambda t, d: events.append(d["message"]))
    assert chosen == good
    assert events == ["skipping incomplete checkpoint checkpoint-8", "skipping incomplete checkpoint checkpoint-6"]


def test_a_checkpoint_with_a_cut_short_rank_file_is_skipped(tmp_path) -> None:
    """A rank killed while saving leaves its RNG state empty although rank 0 finished the rest."""
    import torch

    for step in (2, 4):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text("{}")
        (folder / "adapter_model.safetensors").write_bytes(b"x")
        for rank in (0, 1):
            torch.save({"cpu": torch.zeros(3)}, folder / f"rng_state_{rank}.pth")
    (tmp_path / "checkpoint-4" / "rng_state_1.pth").write_bytes(b"")
    events = []
    assert newest_checkpoint(tmp_path, lambda t, d: events.append(d["message"])) == tmp_path / "checkpoint-2"
    assert events == ["skipping incomplete checkpoint checkpoint-4"]


def test_output_folder_that_is_a_symlink_is_refused(tmp_path) -> None:
    from graphtune.tools.dataset.atomic import publish, temp_sibling
    from graphtune.tools.errors import StorageError

    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "out").symlink_to(target)
    tmp = temp_sibling(tmp_path / "out")
    with pytest.raises(StorageError, match="symlink"):
        publish(tmp, tmp_path / "out", overwrite=True, what="dataset")
    assert os.listdir(target) == []
