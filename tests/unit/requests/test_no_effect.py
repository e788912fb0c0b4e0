"""Issue 22 item 5: a parameter with no effect in the chosen mode is refused with a coded error naming
the field and why; never silently ignored. An explicit default changes nothing and is accepted."""

from __future__ import annotations

import json

import pytest
from graphtune.tools.errors import ParameterWithoutEffect
from graphtune.tools.requests import ExtractRequest

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("extra", [{"node_types": ["Class"]}, {"quality_threshold": 0.5}, {"eval_fraction": 0.2},
                                   {"replay_fraction": 0.5}])
def test_knowledge_extract_refuses_skills_only_settings(extra: dict) -> None:
    [(name, value)] = extra.items()
    with pytest.raises(ParameterWithoutEffect) as info:
        ExtractRequest.parse({"dataset_name": "d", "objective": "knowledge", **extra})
    assert info.value.field == name and "has no effect" in info.value.message and info.value.hint
    assert str(info.value).startswith("[parameter_without_effect]")


@pytest.mark.parametrize("extra", [{"include_private": True}, {"replay_fraction": 0.3}])
def test_skills_extract_refuses_knowledge_only_settings(extra: dict) -> None:
    with pytest.raises(ParameterWithoutEffect) as info:
        ExtractRequest.parse({"dataset_name": "d", **extra})
    assert info.value.field == next(iter(extra))


def test_defaults_and_settings_that_apply_are_accepted() -> None:
    ExtractRequest.parse({"dataset_name": "d", "objective": "knowledge", "node_types": None, "quality_threshold": 0.8,
                          "include_private": True})
    ExtractRequest.parse({"dataset_name": "d", "objective": "skills", "node_types": ["Class"], "include_private": False})
    ExtractRequest.parse({"dataset_name": "d", "objective": "knowledge", "since": "old", "replay_fraction": 0.5})


def test_a_stored_request_parses_again() -> None:
    """The worker re-reads the stored params (node_types filled in with every type): not a refusal."""
    for objective in ("knowledge", "skills"):
        stored = ExtractRequest.parse({"dataset_name": "d", "objective": objective}).model_dump(mode="json")
        assert ExtractRequest.parse(stored).objective == objective


async def test_mcp_refuses_node_types_with_knowledge(client) -> None:
    result = await client.call_tool("extract_training_data", {"dataset_name": "d", "objective": "knowledge",
                                                              "node_types": ["Function"]})
    text = result.content[0].text
    assert result.is_error and text.startswith("[parameter_without_effect] `node_types`") and "Hint:" in text


def _dataset(services, name: str, objective: str | None) -> str:
    folder = services.settings.datasets_dir / name
    folder.mkdir(parents=True)
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    (folder / "train.jsonl").write_text(json.dumps(row) + "\n")
    (folder / "metadata.json").write_text(json.dumps({"name": name, **({"objective": objective} if objective else {})}))
    return name


@pytest.mark.parametrize("objective, extra", [
    (None, {"max_probes": 10}),
    ("knowledge", {"evaluate_probes": False, "max_probes": 10}),
])
async def test_training_refuses_settings_without_effect(client, services, objective, extra) -> None:
    name = _dataset(services, "ds", objective)
    result = await client.call_tool("start_fine_tuning", {"dataset_name": name, "base_model": "smollm2-135m-instruct",
                                                          "dry_run": True, **extra})
    text = result.content[0].text
    assert result.is_error and text.startswith("[parameter_without_effect] `max_probes`"), text


@pytest.mark.parametrize("extra, field", [({"device": "cpu", "max_memory_gib": 8}, "max_memory_gib"),
                                          ({"gpus": 1, "strategy": "ddp"}, "strategy")])
def test_cli_only_training_settings_without_effect_are_refused(services, extra, field) -> None:
    from graphtune.tools.start_fine_tuning import submit_training

    name = _dataset(services, "ds", None)
    with pytest.raises(ParameterWithoutEffect) as info:  # `graphtune train` and Python callers share this path
        submit_training(services, {"dataset_name": name, "base_model": "smollm2-135m-instruct", "dry_run": True,
                                   **extra})
    assert info.value.field == field
