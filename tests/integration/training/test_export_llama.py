"""The real thing: a SmolLM2-135M-Instruct tuned by graphtune, exported to q8_0 GGUF by the
export_model job, read back with the `gguf` package, and answered by a real llama.cpp through npm
`node-llama-cpp` (pinned): answers end at the end-of-turn token and agree with graphtune's own greedy
answers of the same model. Skipped without node/npm, when node-llama-cpp cannot be installed, or
without the built-in model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import wait_final
from graphtune.server.job_store import JobStatus
from graphtune.tools.training.gguf_convert import read_back
from test_real_model import BUILTIN, FACTS, QUESTION, settings, shared_base_models, smollm2  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(BUILTIN.path() is None, reason=f"built-in model not installed ({BUILTIN.install})")]

QUESTIONS = [q for q, _ in FACTS] + [QUESTION, "Name three primary colors."]


@pytest.fixture(scope="module")
def llama_runtime() -> Path:
    from llama_runtime import install

    folder = install()
    if folder is None:
        pytest.skip("node/npm missing or node-llama-cpp@3.21.1 could not be installed")
    return folder


def _graphtune_answers(settings, model_name: str) -> list:  # noqa: ANN001
    from graphtune.tools.training.generation import generate_chat_detailed, load_for_inference
    from graphtune.tools.training.registry import model_dir, read_model_metadata

    meta = read_model_metadata(settings, model_name)
    model, tokenizer = load_for_inference(meta["base_model"], model_dir(settings, model_name), "cpu", settings)
    return generate_chat_detailed(model, tokenizer, [[{"role": "user", "content": q}] for q in QUESTIONS],
                                  max_new_tokens=64)


@pytest.mark.anyio
async def test_tuned_smollm2_exports_to_gguf_and_llama_cpp_answers_like_graphtune(
        smollm2, client, services, llama_runtime, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # 2 shared cores: see test_real_model
    folder = services.settings.datasets_dir / "memo"
    folder.mkdir(parents=True)
    chat = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in FACTS]
    (folder / "train.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chat))
    (folder / "metadata.json").write_text(json.dumps({"name": "memo", "created_at": "2026-01-01T00:00:00Z"}))
    started = await client.call_tool("start_fine_tuning", {
        "dataset_name": "memo", "base_model": "smollm2-135m-instruct", "max_steps": 6, "batch_size": 2,
        "lora_rank": 8, "learning_rate": 5e-4, "max_seq_length": 128, "device": "cpu",
        "output_name": "smol-memo"})
    assert not started.is_error, started.content[0].text
    trained = wait_final(services.store, started.structured_content["job_id"], timeout=600)
    assert trained.status is JobStatus.SUCCEEDED, trained.error

    queued = await client.call_tool("export_model", {"model_name": "smol-memo"})
    assert not queued.is_error, queued.content[0].text
    job = wait_final(services.store, queued.structured_content["job_id"], timeout=600)
    assert job.status is JobStatus.SUCCEEDED, job.error
    result = job.result
    gguf = Path(result["path"])
    assert result["output_type"] == "q8_0" and gguf.is_file() and result["size_bytes"] == gguf.stat().st_size
    assert result["end_of_turn_tokens"] == ["<|im_end|>"] and result["ollama_create"].startswith("ollama create smol-memo")
    found = read_back(gguf)  # what a runtime reads: the template and the token that ends a turn
    assert found["architecture"] == "llama" and "<|im_start|>assistant" in found["chat_template"]
    assert "<|im_end|>" in (found["eos"], found["eot"])
    modelfile = Path(result["modelfile"]).read_text()
    assert f"FROM ./{gguf.name}" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile

    again = await client.call_tool("export_model", {"model_name": "smol-memo"})
    reused = wait_final(services.store, again.structured_content["job_id"], timeout=120)
    assert reused.result["reused"] is True and reused.result["path"] == str(gguf)
    listed = (await client.call_tool("list_models", {})).structured_content["models"]
    assert [(e["output_type"], e["path"]) for e in listed[0]["exports"]] == [("q8_0", str(gguf))]

    from llama_runtime import ask

    ours = _graphtune_answers(services.settings, "smol-memo")
    theirs = ask(llama_runtime, gguf, QUESTIONS, max_tokens=64)["answers"]
    pairs = list(zip(ours, theirs, strict=True))
    for mine, llama in pairs:  # a turn graphtune ends, llama.cpp ends too: at the end-of-turn token, no runaway
        if mine.ended_cleanly:
            assert llama["stop_reason"] == "eogToken", (mine.text, llama)
    same = sum(mine.text == llama["text"] for mine, llama in pairs)
    assert same >= len(pairs) - 1, [(mine.text, llama["text"]) for mine, llama in pairs]  # q8_0 may flip one

    deleted = await client.call_tool("delete_model", {"model_name": "smol-memo"})
    assert not deleted.is_error and not gguf.exists()
