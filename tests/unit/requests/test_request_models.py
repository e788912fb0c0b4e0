"""Issue 10 part 2: one request model per job kind declares every parameter once; the MCP input
schema, the CLI flags and validation derive from it, and every argument error (MCP or CLI) reads
`[code] message (field `x`) Hint: fix`."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from graphtune.tools.requests import (
    AskRequest,
    CompareRequest,
    EvaluateRequest,
    ExportRequest,
    ExtractRequest,
    IngestRequest,
    MergeRequest,
    TrainRequest,
)

pytestmark = pytest.mark.anyio

JOB_TOOLS = {"ingest_codebase": IngestRequest, "extract_training_data": ExtractRequest,
             "start_fine_tuning": TrainRequest, "merge_adapter": MergeRequest, "evaluate_model": EvaluateRequest,
             "compare_models": CompareRequest, "ask_model": AskRequest, "export_model": ExportRequest}
JOB_COMMANDS = {"ingest": IngestRequest, "extract-data": ExtractRequest, "train": TrainRequest,
                "merge": MergeRequest, "evaluate": EvaluateRequest, "compare": CompareRequest, "ask": AskRequest,
                "export": ExportRequest}
CODED = re.compile(r"^\[(?P<code>[a-z_]+)\] (?P<message>.+?) Hint: .+", re.S)
# upper caps only the job config holds (kept out of tools/list, which is held to 15k characters)
def _coded(text: str) -> tuple[str, str] | None:
    """(code, field) of a coded error: the field is named as "(field `x`)" or, first, in the message."""
    match = CODED.match(text)
    if not match:
        return None
    named = re.search(r"\(field `([a-z_]+)`\)", match["message"]) or re.search(r"`([a-z_]+)`", match["message"])
    return (match["code"], named.group(1)) if named else None


def _bound(field: Any, name: str) -> Any:
    return next((getattr(m, name) for m in field.metadata if getattr(m, name, None) is not None), None)


def _words(text: str) -> str:
    return re.sub(r"[^a-z0-9<>_ ]", "", text.lower()).strip()


def test_cli_help_adds_to_the_description_instead_of_repeating_it() -> None:
    """The CLI prints a field's description and then its `cli_help`: a cli_help that only says the description
    again (or less of it) prints the same sentence twice in `--help`."""
    from graphtune.tools.declare import markers

    for model in {*JOB_TOOLS.values()}:
        for name, field in model.public_fields().items():
            extra = markers(field).cli_help
            if extra and field.description:
                help_words, description = _words(extra), _words(field.description)
                assert help_words not in description and help_words[:30] != description[:30], (model.__name__, name)


async def test_job_tool_schemas_are_the_request_models(client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    for name, model in JOB_TOOLS.items():
        schema, fields = tools[name].input_schema, model.agent_fields()
        assert list(schema["properties"]) == list(fields), name
        assert set(schema.get("required", [])) == {n for n, f in fields.items() if f.is_required()}, name
        for field, prop in schema["properties"].items():
            assert prop["description"] == fields[field].description, (name, field)
            assert prop.get("minimum") == _bound(fields[field], "ge") or "anyOf" in prop, (name, field)


def test_cli_flags_are_the_request_models() -> None:
    from graphtune.server.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command, model in JOB_COMMANDS.items():
        parser = sub.choices[command]
        dests = {a.dest for a in parser._actions} - {"help", "wait", "json"}
        assert dests == set(model.public_fields()), command
        positionals = [a.dest for a in parser._actions if not a.option_strings]
        assert positionals == list(model.positional), command
    help_text = " ".join(sub.choices["extract-data"].format_help().split())
    assert "Keep at most this many records (skills) or entities (knowledge); default 10000. Range 100..100000." \
        in help_text
    assert "--objective {skills,knowledge}" in help_text


def test_every_submit_path_enforces_the_training_bounds(services) -> None:
    from graphtune.tools.errors import ConfigError
    from graphtune.tools.start_fine_tuning import submit_training

    for name, request in TrainRequest.model_fields.items():
        low, high = _bound(request, "ge"), _bound(request, "le")
        for bad in ([low - 1] if low is not None and low >= 1 else []) + ([high * 2] if high is not None else []):
            with pytest.raises(ConfigError) as err:  # Python callers get the request model's coded error too
                submit_training(services, {"dataset_name": "d", "base_model": "org/model", name: bad})
            assert err.value.field == name, (name, bad, str(err.value))


def test_request_parse_is_coded_and_runs_cross_field_checks() -> None:
    from graphtune.tools.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        TrainRequest.parse({"dataset_name": "d", "base_model": "m", "lora_rank": 1000})
    assert _coded(str(raised.value)) == ("invalid_argument", "lora_rank") and "4..64" in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        ExtractRequest.parse({"dataset_name": "d", "since": "v1"})
    assert _coded(str(raised.value)) == ("invalid_argument", "since")
    assert ExtractRequest.parse({"dataset_name": "d", "node_types": []}).node_types  # [] = every node type
    assert TrainRequest.parse({"dataset_name": "d", "base_model": "m",
                               "target_modules": ["all-linear"]}).target_modules == "all-linear"


def _bad_value(prop: dict[str, Any]) -> Any:
    """A value the property must refuse: below its minimum, outside its enum, or of the wrong type."""
    options = [prop, *prop.get("anyOf", [])]
    for option in options:
        if "minimum" in option:
            return option["minimum"] - 1
        if "minLength" in option:
            return ""
        if "enum" in option or "const" in option:
            return "no-such-choice"
    kinds = {o.get("type") for o in options}
    if kinds & {"integer", "number", "boolean", "array"}:
        return "not-a-value" if "string" not in kinds else {"not": "a value"}
    return {"not": "a string"}


async def test_every_schema_error_is_coded(client) -> None:
    """Table-driven over the whole tools/list: every parameter of every tool, given a bad value."""
    checked = 0
    for tool in (await client.list_tools()).tools:
        props, required = tool.input_schema["properties"], tool.input_schema.get("required", [])
        base = {name: "x" for name in required}
        for name, prop in props.items():
            result = await client.call_tool(tool.name, {**base, name: _bad_value(prop)})
            text = result.content[0].text
            assert result.is_error and _coded(text) == ("invalid_argument", name), (tool.name, name, text)
            assert "validation error" not in text and "pydantic" not in text, text
            checked += 1
    assert checked >= 90  # every parameter of every tool (engine internals are CLI-only since issue 22)


CLI_ERRORS = [
    # (argv, code, field)
    (["train", "d", "m", "--lora-rank", "1000"], "invalid_argument", "lora_rank"),
    (["train", "d", "m", "--lora-rank", "many"], "invalid_argument", "lora_rank"),
    (["train", "d", "m", "--device", "tpu"], "invalid_argument", "device"),
    (["train", "d", "m", "--target-modules", "q_proj", "--lora-alpha", "0"], "invalid_argument", "lora_alpha"),
    (["train", "d"], "invalid_argument", "base_model"),
    (["train", "d", "m", "--bogus"], "invalid_argument", "bogus"),
    (["train", "d", "m", "--lora-dropout", "0.9"], "invalid_argument", "lora_dropout"),  # CLI-only: still checked
    (["train", "no-such-dataset", "m"], "dataset_not_found", "dataset_name"),
    (["extract-data", "Bad Name"], "invalid_argument", "dataset_name"),
    (["extract-data", "x", "--since", "v1"], "invalid_argument", "since"),
    (["extract-data", "x", "--node-types", "Module"], "invalid_argument", "node_types"),
    (["extract-data", "x", "--quality-threshold", "2"], "invalid_argument", "quality_threshold"),
    (["ingest"], "invalid_argument", "path"),
    (["ingest", "/definitely/not/here"], "invalid_argument", "path"),
    (["ingest", "--package", "json", "--codebase", "../evil"], "invalid_argument", "codebase"),
    (["ingest", "--package", "json", "--write-to", "mysql"], "invalid_argument", "write_to"),
    (["merge", "no-such-model"], "model_unknown", "model_name"),
    (["evaluate", "m", "--max-probes", "0"], "invalid_argument", "max_probes"),
    (["compare", "a", "b"], "invalid_argument", "dataset_name"),
    (["ask", "m", ""], "invalid_argument", "prompt"),
    (["ask", "m", "hi", "--max-new-tokens", "5000"], "invalid_argument", "max_new_tokens"),
    (["jobs", "--limit", "abc"], "invalid_argument", "limit"),
    (["jobs", "--limit", "0"], "invalid_argument", "limit"),
    (["status", "not-a-job"], "invalid_argument", "job_id"),
    (["cancel", "job_0123456789ab"], "job_not_found", "job_id"),
    (["no-such-command"], "invalid_argument", "command"),
    (["--graph-backend", "sql", "jobs"], "invalid_argument", "graph_backend"),
]


@pytest.mark.parametrize(("argv", "code", "field"), CLI_ERRORS, ids=[" ".join(a[0]) for a in CLI_ERRORS])
def test_every_cli_error_is_coded(argv, code, field, tmp_path, capsys) -> None:
    from graphtune.server.cli import main
    from graphtune.server.cli_output import TOOL_COMMANDS

    exit_code = main(["--home", str(tmp_path), *argv])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert exit_code == 2, err
    assert "Traceback" not in err and not captured.out, err
    assert err.startswith("error: ") and err.count("\n") == 0, err
    assert _coded(err.removeprefix("error: ")) == (code, field), err
    assert not any(re.search(rf"\b{tool}\b", err) for tool in TOOL_COMMANDS), err  # hints name CLI commands


def test_cli_error_hints_name_cli_commands_with_json_too(tmp_path, capsys) -> None:
    from graphtune.server.cli import main

    assert main(["--home", str(tmp_path), "train", "no-such-dataset", "m"]) == 2
    err = capsys.readouterr().err
    assert "Hint: Call graphtune datasets" in err and "list_datasets" not in err, err
    assert main(["--home", str(tmp_path), "--json", "train", "no-such-dataset", "m"]) == 2  # the error as JSON
    hint = json.loads(capsys.readouterr().err)["error"]["hint"]
    assert hint.startswith("Call graphtune datasets") and "list_datasets" not in hint, hint


def test_request_models_are_json_serialisable_job_params(tmp_path) -> None:
    params = ExtractRequest.parse({"dataset_name": "d"}).model_dump(mode="json", exclude_none=True)
    assert json.loads(json.dumps(params)) == params and params["node_types"]
    assert ExtractRequest(**params).dataset_name == "d"  # the worker rebuilds it from the job row


def test_cli_only_settings_reach_the_job(tmp_path, capsys) -> None:
    """Engine settings kept off the MCP surface (TrainRequest.cli_only) still work from the CLI."""
    import json as _json

    from graphtune.server.cli import main

    folder = tmp_path / "datasets" / "memo"
    folder.mkdir(parents=True)
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    (folder / "train.jsonl").write_text(_json.dumps(row) + "\n")
    (folder / "metadata.json").write_text(_json.dumps({"name": "memo"}))
    code = main(["--home", str(tmp_path), "--json", "train", "memo", "smollm2-135m-instruct", "--dry-run",
                 "--warmup", "5", "--seed", "7", "--device", "cpu"])
    out = capsys.readouterr()
    if code == 2 and "model_not_found" in out.err:
        pytest.skip("the built-in model is not installed")
    assert code == 0, out.err
    settings = _json.loads(out.out)["result"]["settings"]
    assert settings["warmup"] == {"value": 5.0, "source": "given"} and settings["seed"] == {"value": 7,
                                                                                           "source": "given"}
