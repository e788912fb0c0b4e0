"""Training on CPU with a tiny Llama built from a config and a locally trained tokenizer."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
from pathlib import Path

import pytest
from conftest import FACTS, _chat, wait_final, wait_for
from graphtune.server.job_store import JobStatus
from graphtune.tools.requests import TrainRequest
from graphtune.server.services import Services

pytestmark = pytest.mark.slow

def _train_cfg(tiny_model: Path, **over) -> dict:
    return {"dataset_name": "memo", "base_model": str(tiny_model), "learning_rate": 1e-2, "lora_rank": 16,
            "target_modules": "all-linear", "batch_size": 2, "num_epochs": 10, "warmup": 0, "save_steps": 1000,
            "device": "cpu", **over}


def _metrics(services: Services, job_id: str) -> list[dict]:
    return [e.data for e in services.store.events(job_id, type_="metrics", limit=10_000) if "loss" in e.data]


@pytest.mark.anyio
async def test_training_through_mcp_learns_and_saves_a_loadable_adapter(client, services, memo_dataset, tiny_model):
    mcp_args = {k: v for k, v in _train_cfg(tiny_model, output_name="memo-lora").items()
                if k not in TrainRequest.cli_only}  # warmup, save_steps: CLI-only
    started = await client.call_tool("start_fine_tuning", mcp_args)
    assert not started.is_error, started.content[0].text
    job_id = started.structured_content["job_id"]
    final = wait_final(services.store, job_id, timeout=300)
    assert final.status is JobStatus.SUCCEEDED, final.error
    losses = [m["loss"] for m in _metrics(services, job_id)]
    assert losses[-1] < 0.7 * losses[0]
    result = final.result
    assert result["eval_loss"] < result["base_eval_loss"]
    assert math.isclose(result["perplexity"], math.exp(result["eval_loss"]), rel_tol=1e-3)
    status = (await client.call_tool("get_training_status", {"job_id": job_id})).structured_content
    assert {"loss", "learning_rate", "grad_norm", "tokens_per_second", "tokens_seen"} <= set(
        status["latest_metrics"])
    assert "eta_seconds" not in status["latest_metrics"]  # one ETA per reply: the view's own
    folder = Path(result["path"])
    assert {"adapter_config.json", "adapter_model.safetensors", "training_metadata.json", "README.md", "loss.png",
            "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    models = (await client.call_tool("list_models", {})).structured_content
    assert models["models"][0]["name"] == "memo-lora" and models["models"][0]["on_disk"]
    plot = await client.read_resource("graphtune://models/memo-lora/loss.png")
    assert plot.contents[0].blob

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), folder).eval()
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": FACTS[0][0]}], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
    assert any(p.requires_grad is False for p in model.parameters())

    merge = await client.call_tool("merge_adapter", {"model_name": "memo-lora"})
    assert not merge.is_error, merge.content[0].text
    merged_job = wait_final(services.store, merge.structured_content["job_id"], timeout=200)
    assert merged_job.status is JobStatus.SUCCEEDED, merged_job.error
    assert merged_job.result["merged_model"] == "memo-lora-merged"
    merged = AutoModelForCausalLM.from_pretrained(merged_job.result["path"]).eval()
    with torch.no_grad():
        assert torch.allclose(merged(**ids).logits, model(**ids).logits, atol=1e-4)
    listed = {m["name"]: m for m in (await client.call_tool("list_models", {})).structured_content["models"]}
    assert listed["memo-lora-merged"]["kind"] == "merged" and listed["memo-lora-merged"]["merged_from"] == "memo-lora"
    assert isinstance(listed["memo-lora-merged"]["created_at"], str)
    final_view = (await client.call_tool("get_training_status", {"job_id": job_id})).structured_content
    assert final_view["progress"]["message"] == "finished: the train job succeeded"


def test_cancel_then_resume_matches_an_uninterrupted_run(services, memo_dataset, tiny_model):
    # 200 steps: the worker reads a cancel request at most every 0.5 s, so the run must outlast that
    # window by far even on a fast machine. max_steps only caps the plan, and 10 epochs of the 6-row memo
    # dataset are 60 steps (on an idle machine one such run's cancel landed after its last step,
    # 2026-12-04): its rows four times over hold 240, capped at 200.
    folder = services.settings.datasets_dir / "memo4"
    shutil.copytree(services.settings.datasets_dir / memo_dataset, folder)
    (folder / "train.jsonl").write_text((folder / "train.jsonl").read_text() * 4)
    cfg = _train_cfg(tiny_model, max_steps=200, batch_size=1, dataset_name="memo4")
    from graphtune.tools.start_fine_tuning import submit_training
    from graphtune.tools.training.submit import resume_training

    straight = submit_training(services, {**cfg, "output_name": "straight"})
    straight_final = wait_final(services.store, straight.id, timeout=300)
    assert straight_final.status is JobStatus.SUCCEEDED
    reference = _metrics(services, straight.id)
    assert reference[-1]["step"] == 200  # the run is as long as the cancel needs

    job = submit_training(services, {**cfg, "output_name": "resumed"})
    wait_for(lambda: (services.store.get(job.id).progress_current or 0) >= 8, timeout=200)
    services.store.request_cancel(job.id)
    stopped = wait_final(services.store, job.id, timeout=120)
    assert stopped.status is JobStatus.CANCELLED
    assert not (services.settings.models_dir / "resumed").exists()  # no half model
    stop_step = max(m["step"] for m in _metrics(services, job.id))
    assert stop_step < reference[-1]["step"]

    resume_training(services, job.id)
    resumed = wait_final(services.store, job.id, timeout=300)
    assert resumed.status is JobStatus.SUCCEEDED, resumed.error
    after = [m for m in _metrics(services, job.id) if m["step"] > stop_step]
    assert after[0]["step"] == stop_step + 1  # continues, does not restart at step 1
    assert after[-1]["step"] == reference[-1]["step"]
    assert after[-1]["loss"] == pytest.approx(reference[-1]["loss"], rel=1e-4)
    assert resumed.result["eval_loss"] == pytest.approx(straight_final.result["eval_loss"], rel=1e-4)


def test_killed_worker_is_interrupted_and_resumes(services, memo_dataset, tiny_model):
    from graphtune.tools.start_fine_tuning import submit_training
    from graphtune.tools.training.submit import resume_training

    job = submit_training(services, _train_cfg(tiny_model, batch_size=1, save_steps=2, output_name="killed"))
    wait_for(lambda: (services.store.get(job.id).progress_current or 0) >= 5, timeout=200)
    os.killpg(services.store.get(job.id).worker_pid, signal.SIGKILL)
    wait_for(lambda: services.runner.reconcile() or services.store.get(job.id).status.is_final, timeout=30)
    assert services.store.get(job.id).status is JobStatus.INTERRUPTED
    assert not (services.settings.models_dir / "killed").exists()
    resume_training(services, job.id)
    final = wait_final(services.store, job.id, timeout=300)
    assert final.status is JobStatus.SUCCEEDED, final.error
    resumed_logs = [e.data["message"] for e in services.store.events(job.id, type_="log", limit=1000)]
    assert any(m.startswith("resuming from checkpoint-") for m in resumed_logs)


@pytest.mark.anyio
async def test_bad_inputs_are_refused_before_queueing(client, services, memo_dataset, tiny_model):
    bad = services.settings.datasets_dir / "bad.jsonl"
    bad.write_text(json.dumps(_chat("q", "a")) + "\n{not json\n" + json.dumps({"messages": [{"role": "robot",
                                                                                             "content": "x"}]}) + "\n")
    result = await client.call_tool("start_fine_tuning", {"dataset_name": str(bad), "base_model": str(tiny_model)})
    text = result.content[0].text
    assert result.is_error and "line 2" in text and "line 3" in text and "[dataset_invalid]" in text
    result = await client.call_tool("start_fine_tuning", {"dataset_name": "memo", "base_model": str(tiny_model),
                                                          "method": "qlora", "device": "cpu"})
    assert result.is_error and "qlora" in result.content[0].text.lower() and "method='lora'" in result.content[0].text
    result = await client.call_tool("start_fine_tuning", {"dataset_name": "memo", "base_model": "not a model id"})
    assert result.is_error and "[model_not_found]" in result.content[0].text
    result = await client.call_tool("start_fine_tuning", {"dataset_name": "memo", "base_model": "org/absent-model"})
    assert result.is_error and "HF_HUB_OFFLINE" in result.content[0].text  # offline: clear error, no 46 s hang
    result = await client.call_tool("start_fine_tuning", {"dataset_name": "memo", "base_model": str(tiny_model),
                                                          "lora_rank": 128})
    assert result.is_error and "lora_rank" in result.content[0].text
    assert services.store.list(kind="train")[1] == 0  # nothing was queued


def test_dry_run_reports_tokens_steps_and_estimates(services, memo_dataset, tiny_model):
    from graphtune.tools.start_fine_tuning import submit_training

    job = submit_training(services, _train_cfg(tiny_model, dry_run=True))
    final = wait_final(services.store, job.id, timeout=200)
    assert final.status is JobStatus.SUCCEEDED, final.error
    result = final.result
    assert result["dry_run"] and result["train_examples"] == len(FACTS) and result["optimizer_steps"] > 0
    assert result["estimate"]["memory_gib"] > 0 and not list(services.settings.models_dir.iterdir())


def test_packed_and_padded_batches_give_the_same_loss(tiny_model):
    import torch
    from graphtune.tools.training.packing import (
        collate_packed,
        collate_padded,
        label_tokens,
    )
    from graphtune.tools.training.tokenize import encode, ensure_chat_template
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ensure_chat_template(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa").eval()
    examples = [encode(tokenizer, _chat(q, a)["messages"]) for q, a in FACTS]
    packed, padded = collate_packed(examples), collate_padded(examples, tokenizer.pad_token_id)
    assert label_tokens(packed) == label_tokens(padded)
    with torch.no_grad():
        packed_loss = model(**packed, use_cache=False).loss  # with a cache, transformers ignores packing
        # per-token mean over the padded batch (HF averages over all label tokens in the batch)
        padded_loss = model(**padded, use_cache=False).loss
    assert float(packed_loss) == pytest.approx(float(padded_loss), rel=1e-4)


def test_labels_cover_only_the_answer(tiny_model):
    from graphtune.tools.training.tokenize import encode, ensure_chat_template
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    ensure_chat_template(tokenizer)
    q, a = FACTS[0]
    example = encode(tokenizer, _chat(q, a)["messages"])
    answer = tokenizer.decode([t for t in example.labels if t != -100])
    assert answer == a + tokenizer.eos_token
    assert q not in answer


def test_sigterm_saves_a_checkpoint_and_ends_interrupted(services, memo_dataset, tiny_model):
    from graphtune.tools.start_fine_tuning import submit_training
    from graphtune.tools.training.submit import resume_training

    job = submit_training(services, _train_cfg(tiny_model, batch_size=1, output_name="termed"))
    wait_for(lambda: (services.store.get(job.id).progress_current or 0) >= 4, timeout=200)
    os.kill(services.store.get(job.id).worker_pid, signal.SIGTERM)
    stopped = wait_final(services.store, job.id, timeout=120)
    assert stopped.status is JobStatus.INTERRUPTED
    checkpoints = list((services.settings.work_dir / job.id / "checkpoints").glob("checkpoint-*"))
    assert checkpoints and all((c / "trainer_state.json").is_file() for c in checkpoints)
    resume_training(services, job.id)
    assert wait_final(services.store, job.id, timeout=300).status is JobStatus.SUCCEEDED
