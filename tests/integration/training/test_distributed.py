"""Multi-rank training through the real launcher path (torchrun) with the gloo backend on CPU:
the same code a multi-GPU job runs, minus NCCL. Tiny config-built model; slow-marked."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import wait_final, wait_for
from graphtune.server.job_store import JobStatus
from graphtune.tools.start_fine_tuning import submit_training
from graphtune.tools.training.submit import resume_training
from test_training import _metrics, _train_cfg

pytestmark = pytest.mark.slow


def _job_processes(job_id: str) -> dict[int, str]:
    """Live (not zombie) processes of this job's ranks or torchrun: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if job_id in cmd and ("rank_worker" in cmd or "torch.distributed.run" in cmd) and state != "Z":
            found[int(entry.name)] = cmd
    return found


def _rank_pids(job_id: str) -> list[int]:
    return list(_job_processes(job_id))


def _rank_workers(job_id: str) -> list[int]:
    """The ranks alone (not torchrun, whose command line names the rank module too)."""
    return [pid for pid, cmd in _job_processes(job_id).items() if "torch.distributed.run" not in cmd]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two ranks on a small CPU: no OpenMP spin between them


def test_two_ranks_train_and_save_one_adapter(services, memo_dataset, tiny_model):
    job = submit_training(services, _train_cfg(tiny_model, gpus=2, num_epochs=4, output_name="two-ranks"))
    final = wait_final(services.store, job.id, timeout=300)
    assert final.status is JobStatus.SUCCEEDED, final.error
    event = services.store.events(job.id, type_="distributed", limit=10)[0].data
    assert event["world_size"] == 2 and event["strategy"] == "ddp"
    # torchrun's per-run folder is inside the job's folder, not left behind in the system's temp dir
    assert any((Path(event["log"]).parent / "torchelastic").iterdir())
    losses = [m["loss"] for m in _metrics(services, job.id)]
    assert losses[-1] < losses[0]
    folder = Path(final.result["path"])
    assert {"adapter_config.json", "adapter_model.safetensors", "training_metadata.json"} <= {
        p.name for p in folder.iterdir()}
    from safetensors.torch import load_file

    weights = load_file(folder / "adapter_model.safetensors")
    assert weights and all(".lora_" in k for k in weights)  # the single-GPU adapter format
    assert not _rank_pids(job.id)


@pytest.fixture
def long_memo(services, memo_dataset) -> str:
    """The memo facts five times over (30 examples): 150 two-rank steps, so a cancel always lands
    mid-run however busy the machine is."""
    import json

    from conftest import FACTS, _chat

    folder = services.settings.datasets_dir / "long-memo"
    folder.mkdir(parents=True)
    rows = [_chat(f"{q} ({i})", a) for i in range(5) for q, a in FACTS]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    (folder / "metadata.json").write_text(json.dumps({"name": "long-memo", "created_at": "2026-01-01T00:00:00Z"}))
    return "long-memo"


def test_cancel_on_two_ranks_then_resume_on_one_matches_an_uninterrupted_run(services, long_memo, tiny_model):
    cfg = _train_cfg(tiny_model, gpus=2, num_epochs=10, batch_size=1, dataset_name=long_memo)
    straight = submit_training(services, {**cfg, "output_name": "straight"})
    straight_final = wait_final(services.store, straight.id, timeout=300)
    assert straight_final.status is JobStatus.SUCCEEDED, straight_final.error
    reference = _metrics(services, straight.id)

    job = submit_training(services, {**cfg, "output_name": "resumed"})
    wait_for(lambda: any(m["step"] >= 5 for m in _metrics(services, job.id)), timeout=200)
    services.store.request_cancel(job.id)
    stopped = wait_final(services.store, job.id, timeout=120)
    assert stopped.status is JobStatus.CANCELLED, stopped.error
    assert not (services.settings.models_dir / "resumed").exists()
    stop_step = max(m["step"] for m in _metrics(services, job.id))
    assert stop_step < reference[-1]["step"]
    wait_for(lambda: not _rank_pids(job.id), timeout=30)

    resume_training(services, job.id, gpus=1)  # 2 GPUs -> 1: same data order, same steps
    resumed = wait_final(services.store, job.id, timeout=300)
    assert resumed.status is JobStatus.SUCCEEDED, resumed.error
    after = [m for m in _metrics(services, job.id) if m["step"] > stop_step]
    assert after[0]["step"] == stop_step + 1
    assert after[-1]["step"] == reference[-1]["step"]
    assert after[-1]["loss"] == pytest.approx(reference[-1]["loss"], rel=1e-3)
    assert resumed.result["eval_loss"] == pytest.approx(straight_final.result["eval_loss"], rel=1e-3)


def test_a_killed_rank_interrupts_the_job_and_leaves_no_process(services, memo_dataset, tiny_model):
    job = submit_training(services, _train_cfg(tiny_model, gpus=2, num_epochs=10, batch_size=1, save_steps=2,
                                               output_name="killed"))
    wait_for(lambda: any(m["step"] >= 3 for m in _metrics(services, job.id)), timeout=200)
    ranks = _rank_workers(job.id)
    assert len(ranks) == 2, ranks
    os.kill(ranks[-1], signal.SIGKILL)
    final = wait_final(services.store, job.id, timeout=120)
    assert final.status is JobStatus.INTERRUPTED, final.error
    assert "resumable" in final.error["message"]
    assert not (services.settings.models_dir / "killed").exists()
    wait_for(lambda: not _rank_pids(job.id), timeout=30)
    resume_training(services, job.id, gpus=2)
    resumed = wait_final(services.store, job.id, timeout=300)
    assert resumed.status is JobStatus.SUCCEEDED, resumed.error
    logs = [e.data["message"] for e in services.store.events(job.id, type_="log", limit=1000)]
    assert any(m.startswith("resuming from checkpoint-") for m in logs)


@pytest.mark.parametrize("when", ["ranks starting", "ranks training"])
def test_killed_worker_takes_its_ranks_with_it(services, memo_dataset, tiny_model, when):
    job = submit_training(services, _train_cfg(tiny_model, gpus=2, num_epochs=10, batch_size=1,
                                               output_name="orphans"))
    wait_for(lambda: len(_rank_workers(job.id)) == 2, timeout=120)
    if when == "ranks training":
        wait_for(lambda: any(m["step"] >= 2 for m in _metrics(services, job.id)), timeout=200)
    os.killpg(services.store.get(job.id).worker_pid, signal.SIGKILL)
    wait_for(lambda: not _rank_pids(job.id), timeout=30)  # parent-death signal: no orphan rank
    wait_for(lambda: services.runner.reconcile() or services.store.get(job.id).status.is_final, timeout=30)
    assert services.store.get(job.id).status is JobStatus.INTERRUPTED


def test_dry_run_reports_the_multi_rank_plan(services, memo_dataset, tiny_model):
    job = submit_training(services, _train_cfg(tiny_model, gpus=2, dry_run=True, gradient_accumulation_steps=2))
    final = wait_final(services.store, job.id, timeout=120)
    assert final.status is JobStatus.SUCCEEDED, final.error
    plan = final.result["distributed"]
    assert plan["world_size"] == 2 and plan["strategy"] == "ddp" and plan["micro_batches_per_step"] == 4
    assert plan["global_tokens_per_step_max"] == 4 * final.result["tokens_per_batch"]
    assert final.result["micro_batches"] % 4 == 0  # every step has the same number of micro-batches


def test_bad_gpu_settings_are_refused_before_queueing(services, memo_dataset, tiny_model):
    from graphtune.tools.errors import GraphtuneError

    with pytest.raises(GraphtuneError) as err:
        submit_training(services, _train_cfg(tiny_model, gpus=0))
    assert err.value.field == "gpus" and "'auto' or a count" in str(err.value)
    with pytest.raises(GraphtuneError) as err:
        submit_training(services, _train_cfg(tiny_model, strategy="zero3"))
    assert err.value.field == "strategy"


def test_split_to_multiple_keeps_every_example_in_order():
    from graphtune.tools.training.engine import split_to_multiple

    batches = [[1, 2, 3], [4], [5, 6], [7, 8, 9, 10], [11]]
    out, epochs = split_to_multiple(batches, [0, 0, 0, 1, 1], 4)
    assert len(out) % 4 == 0 and [x for b in out for x in b] == list(range(1, 12))
    assert len(epochs) == len(out) and epochs[:3] == [0, 0, 0]
    same, _ = split_to_multiple(batches, [0] * 5, 5)
    assert same == batches


def test_qlora_is_planned_under_fsdp_with_its_4bit_weights_stored_for_sharding():
    """QLoRA + FSDP (the bitsandbytes/PEFT recipe): the strategy is accepted and the packed 4-bit
    weights are stored as bf16, which FSDP can shard; a single-GPU QLoRA keeps uint8 storage.
    The GPU run (8B, 2 H100s) is in bench/RESULTS.md."""
    import torch
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.model_loading import quantization_config
    from graphtune.tools.training.train_job import choose_strategy

    cfg = LoraJobConfig.from_dict({"dataset_name": "d", "base_model": "m", "method": "qlora", "strategy": "fsdp"})
    assert choose_strategy(cfg, "cuda", "m", world=2) == "fsdp"
    assert quantization_config(sharded=True).bnb_4bit_quant_storage == torch.bfloat16
    assert quantization_config(sharded=False).bnb_4bit_quant_storage == torch.uint8


def test_fsdp_off_cuda_is_refused_with_a_hint(services, memo_dataset, tiny_model):
    from graphtune.tools.errors import GraphtuneError

    with pytest.raises(GraphtuneError) as err:
        submit_training(services, _train_cfg(tiny_model, gpus=2, strategy="fsdp", output_name="fsdp-cpu"))
    assert err.value.field == "strategy" and "ddp" in err.value.hint
