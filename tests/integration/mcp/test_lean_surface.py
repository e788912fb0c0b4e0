"""Issue 10 (part 3 and error style): a lean tools/list, compact replies, one coded error style
for argument errors from the SDK, the CLI and resources, and devices refused before queueing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ValidationError

pytestmark = pytest.mark.anyio

TOOLS_LIST_BUDGET = 20_000  # raised from 15,000 for descriptions an agent understands (issue 22)
CODED = re.compile(r"^\[invalid_argument\] .+ \(field `(?P<field>[a-z_]+)`\) Hint: .+", re.S)


async def test_tools_list_is_lean_and_keeps_structured_output(client) -> None:
    tools = (await client.list_tools()).tools
    # what the client receives: the tools as the server serializes them (camelCase, no null fields, compact JSON)
    size = len(json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools],
                          separators=(",", ":")))
    assert size <= TOOLS_LIST_BUDGET, f"tools/list is {size} characters (budget {TOOLS_LIST_BUDGET})"
    for tool in tools:
        assert tool.output_schema is not None, tool.name  # structured output kept
        assert "\n" not in tool.description and len(tool.description) <= 100, tool.name
        assert "title" not in json.dumps(tool.input_schema), tool.name
        for name, prop in tool.input_schema["properties"].items():  # plain words, not "Seed." or "Replace."
            assert len(prop.get("description", "").split()) >= 3, (tool.name, name, prop.get("description"))
    listed = await client.call_tool("list_jobs", {})
    assert listed.structured_content == {"jobs": [], "total": 0, "next_offset": None}
    assert json.loads(listed.content[0].text) == listed.structured_content
    assert "\n" not in listed.content[0].text and ", " not in listed.content[0].text  # compact JSON


@pytest.mark.parametrize(("tool", "args", "field"), [
    # wrong type
    ("list_jobs", {"limit": "many"}, "limit"),
    ("get_training_status", {"job_id": "job_0123456789ab", "detail": "very"}, "detail"),
    ("start_fine_tuning", {"dataset_name": "d", "base_model": "m", "lora_rank": "x"}, "lora_rank"),
    # not a parameter of the tool (lora_dropout is CLI-only): refused, never silently dropped
    ("start_fine_tuning", {"dataset_name": "d", "base_model": "m", "lora_dropout": 0.1}, "lora_dropout"),
    ("extract_training_data", {"dataset_name": "d", "node_types": "Method"}, "node_types"),
    # out of range
    ("list_jobs", {"limit": 0}, "limit"),
    ("start_fine_tuning", {"dataset_name": "d", "base_model": "m", "lora_rank": 1000}, "lora_rank"),
    ("extract_training_data", {"dataset_name": "d", "quality_threshold": 2}, "quality_threshold"),
    ("ask_model", {"model": "m", "prompt": ""}, "prompt"),
    ("graph_diff", {"codebase": "c", "limit": 1000}, "limit"),
    # unknown literal
    ("list_jobs", {"status": "sleeping"}, "status"),
    ("start_fine_tuning", {"dataset_name": "d", "base_model": "m", "device": "tpu"}, "device"),
    ("extract_training_data", {"dataset_name": "d", "objective": "vibes"}, "objective"),
    ("list_base_models", {"kind": "nope"}, "kind"),
    # missing
    ("start_fine_tuning", {"base_model": "m"}, "dataset_name"),
    ("cancel_job", {}, "job_id"),
])
async def test_schema_errors_are_coded(client, tool, args, field) -> None:
    result = await client.call_tool(tool, args)
    text = result.content[0].text
    assert result.is_error, text
    match = CODED.match(text)
    assert match and match["field"] == field, text
    assert "validation error" not in text and "pydantic" not in text, text


async def test_schema_error_hints_say_how_to_fix(client) -> None:
    out_of_range = (await client.call_tool("list_jobs", {"limit": 0})).content[0].text
    assert "1..100" in out_of_range
    literal = (await client.call_tool("list_jobs", {"status": "sleeping"})).content[0].text
    assert "'running'" in literal
    several = (await client.call_tool("start_fine_tuning", {"dataset_name": "d", "base_model": "m",
                                                            "lora_rank": 1000, "method": "x"})).content[0].text
    assert "Also invalid" in several


async def test_tool_errors_have_no_sdk_prefix(client) -> None:
    text = (await client.call_tool("get_training_status", {"job_id": "job_0123456789ab"})).content[0].text
    assert text.startswith("[job_not_found] ")


@pytest.mark.parametrize(("argv", "field"), [
    (["extract-data", "x", "--quality-threshold", "2"], "quality_threshold"),
    (["train", "d", "m", "--lora-rank", "1000"], "lora_rank"),
    (["jobs", "--limit", "0"], "limit"),
    (["ask", "m", ""], "prompt"),
])
def test_cli_bad_input_prints_the_coded_error(argv, field, tmp_path, capsys) -> None:
    from graphtune.server.cli import main

    code = main(["--home", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("error: ") and CODED.match(err.removeprefix("error: ").strip())["field"] == field, err


async def test_unknown_resource_name_is_coded(client) -> None:
    from mcp.shared.exceptions import MCPError

    for uri, code in (("graphtune://models/nope", "[model_unknown]"),
                      ("graphtune://models/nope/evaluation", "[model_unknown]"),
                      ("graphtune://datasets/nope", "[dataset_not_found]")):
        with pytest.raises(MCPError) as raised:
            await client.read_resource(uri)
        assert code in str(raised.value) and "Hint:" in str(raised.value), str(raised.value)
        assert "(field `name`)" in str(raised.value), str(raised.value)  # the URI parameter, not a tool argument


def _chat_jsonl(folder: Path) -> Path:
    path = folder / "tiny.jsonl"
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    path.write_text(json.dumps(row) + "\n")
    return path


@pytest.mark.parametrize("tool", ["start_fine_tuning", "ask_model", "evaluate_model", "compare_models"])
async def test_cuda_is_refused_before_queueing_without_a_gpu(client, services, monkeypatch, tmp_path, tool) -> None:
    from graphtune.tools.training import preflight

    monkeypatch.setattr(preflight, "nvidia_gpu_present", lambda: False)
    args = {"start_fine_tuning": {"dataset_name": str(_chat_jsonl(tmp_path)), "base_model": "smollm2-135m-instruct"},
            "ask_model": {"model": "smollm2-135m-instruct", "prompt": "hi"},
            "evaluate_model": {"model_name": "m"},
            "compare_models": {"model_a": "a", "model_b": "b", "dataset_name": "d"}}[tool]
    result = await client.call_tool(tool, {**args, "device": "cuda"})
    text = result.content[0].text
    assert result.is_error and text.startswith("[invalid_training_config] `device`='cuda'"), text
    assert services.store.list(limit=10)[1] == 0  # nothing was queued


async def test_mps_is_refused_off_macos(client, monkeypatch) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    result = await client.call_tool("ask_model", {"model": "m", "prompt": "hi", "device": "mps"})
    assert result.is_error and "`device`='mps'" in result.content[0].text


def test_qlora_check_is_not_ok_without_cuda_but_only_warns() -> None:
    from graphtune.tools.environment import device_checks

    checks, device = device_checks({"torch": "2.x", "cuda": False, "gpus": [], "mps": False, "bnb": True})
    qlora = next(c for c in checks if c.name == "qlora")
    assert device == "cpu" and qlora.ok is False and qlora.required is False and qlora.fix
    assert all(c.ok for c in checks if c.required)  # so the report's `ok` stays true without a GPU
    checks, _ = device_checks({"torch": "2.x", "cuda": True, "gpus": [{"name": "G", "memory_gib": 80}],
                               "mps": False, "bnb": True})
    assert next(c for c in checks if c.name == "qlora").ok is True


async def test_detailed_status_stays_small_with_fat_events(client, services) -> None:
    job = services.store.create("sleep", {"steps": 1}, heavy=False)
    for i in range(120):
        services.store.add_event(job.id, "metrics", {"step": i, "note": "x" * 400, "loss": 1.0 / (i + 1)})
    result = await client.call_tool("get_training_status", {"job_id": job.id, "detail": True})
    assert not result.is_error, result.content[0].text
    assert len(result.content[0].text) < 12_000
    view = result.structured_content
    steps = [e["data"]["step"] for e in view["recent_events"] if "note" in e["data"]]
    assert steps and steps[-1] == 119 and len(steps) < 50  # the newest are kept, the older paged
    first = view["recent_events"][0]["id"]
    paged = (await client.call_tool("get_training_status", {"job_id": job.id, "detail": True,
                                                            "after_event_id": first - 1})).structured_content
    assert paged["recent_events"][0]["id"] == first


class LeanReply(BaseModel):
    count: int


def _good() -> LeanReply:
    """Good."""
    return LeanReply(count=1)


def _bad() -> LeanReply:
    """Bad."""
    return {"count": "not a number"}  # type: ignore[return-value]


async def test_a_lean_tool_still_validates_its_result_against_the_full_model() -> None:
    """lean_tool skips the SDK's output-schema derivation, not the validation of results."""
    from graphtune.server.lean import lean_tool

    ok = lean_tool(_good, name="good", description="Good.", annotations=None)
    assert ok.output_schema == {"type": "object"}
    result = await ok.run({}, None, convert_result=True)
    assert result.structured_content == {"count": 1} and json.loads(result.content[0].text) == {"count": 1}
    broken = lean_tool(_bad, name="bad", description="Bad.", annotations=None)
    with pytest.raises(ToolError) as err:
        await broken.run({}, None, convert_result=True)
    assert isinstance(err.value.__cause__, ValidationError)  # the result was checked against LeanReply ...
    assert "invalid_argument" not in str(err.value)  # ... and a bad result is not blamed on the caller's arguments
