"""Issue 22 item 1: estimates an agent can plan with. A finished run stores its measured rate and
peak memory; the next plan of the same shape scales it (a tight range), else the fitted formula (a
wide range); a running job's reply carries one ETA."""

from __future__ import annotations

from types import SimpleNamespace

from graphtune.server.job_store import JobStatus
from graphtune.tools.jobs import job_view
from graphtune.tools.training.calibration import measurement, time_and_memory
from graphtune.tools.training.config import LoraJobConfig
from graphtune.tools.training.estimate import estimate

SMOLLM2 = {"hidden": 576, "layers": 30, "params": 134479872, "vocab": 49152}


def _cfg(**over) -> LoraJobConfig:
    return LoraJobConfig.from_dict({"dataset_name": "d", "base_model": "smollm2-135m-instruct", **over})


def _plan(tokens: int = 502_520, tokens_per_batch: int = 4096) -> SimpleNamespace:
    return SimpleNamespace(tokens=tokens, tokens_per_batch=tokens_per_batch)


def _store_with(job_store, measured: dict) -> None:
    job = job_store.create("train", {}, heavy=False)
    job_store.claim_runnable(max_jobs=10, max_heavy=10)
    job_store.finish(job.id, JobStatus.SUCCEEDED, result={"measured": measured})


def test_the_formula_gives_a_wide_range_around_the_measured_cpu_runs() -> None:
    plan = time_and_memory(_cfg(), "cpu", SMOLLM2, _plan())
    assert plan["basis"].startswith("formula")
    seconds, memory = plan["seconds"], plan["memory_gib"]
    assert seconds["low"] < seconds["expected"] < seconds["high"]
    observed = 86 * 130  # issue 22: ~86 s per step over 130 steps of this shape on 2 CPU cores
    assert seconds["expected"] / 1.5 <= observed <= seconds["expected"] * 1.5
    assert memory["expected"] / 1.5 <= 12e9 / 2**30 <= memory["expected"] * 1.5  # the worker's 12 GB RSS


def test_a_comparable_finished_run_calibrates_the_plan(job_store) -> None:
    cfg = _cfg()
    key = {"base_model": "smollm2-135m-instruct", "device": "cpu", "method": "lora", "tokens_per_batch": 4096,
           "world_size": 1}
    _store_with(job_store, {**key, "seconds_per_token": 0.02, "outside_training_seconds": 100.0,
                            "peak_memory_gib": 11.0})
    _store_with(job_store, {**key, "tokens_per_batch": 1024, "seconds_per_token": 9.0, "peak_memory_gib": 3.0})
    plan = time_and_memory(cfg, "cpu", SMOLLM2, _plan(tokens=10_000), job_store)
    assert plan["basis"].startswith("calibrated")
    assert plan["seconds"]["expected"] == 200.0 and plan["job_seconds"]["expected"] == 300.0
    assert plan["seconds"]["low"] == 160.0 and plan["seconds"]["high"] == 250.0
    assert plan["memory_gib"]["expected"] == 11.0
    other_shape = time_and_memory(cfg, "cpu", SMOLLM2, _plan(tokens_per_batch=2048), job_store)
    assert other_shape["basis"].startswith("formula")


def test_a_cuda_plan_is_calibrated_only_by_runs_that_compiled_their_layers_as_it_will(job_store) -> None:
    key = {"base_model": "smollm2-135m-instruct", "device": "cuda", "method": "lora", "tokens_per_batch": 49152,
           "world_size": 1}
    _store_with(job_store, {**key, "seconds_per_token": 1e-5, "peak_memory_gib": 49.0})  # stored before the key: eager
    plan = _plan(tokens=1_000_000, tokens_per_batch=49152)
    compiled = time_and_memory(_cfg(compile_layers=True), "cuda", SMOLLM2, plan, job_store)
    eager = time_and_memory(_cfg(compile_layers=False), "cuda", SMOLLM2, plan, job_store)
    assert compiled["basis"].startswith("formula") and eager["basis"].startswith("calibrated")
    _store_with(job_store, {**key, "compiled_layers": True, "seconds_per_token": 7e-6, "peak_memory_gib": 41.0})
    compiled = time_and_memory(_cfg(compile_layers=True), "cuda", SMOLLM2, plan, job_store)
    assert compiled["basis"].startswith("calibrated") and compiled["memory_gib"]["expected"] == 41.0
    assert measurement(_cfg(compile_layers=True), "cuda", 49152, 1, {"fast_path": {"compiled_layers": 30}}
                       )["compiled_layers"] is True
    assert measurement(_cfg(), "cuda", 49152, 1, {"fast_path": {"compiled_layers": 0}})["compiled_layers"] is False
    checkpointed = time_and_memory(_cfg(compile_layers=True, gradient_checkpointing="on"), "cuda", SMOLLM2, plan,
                                   job_store)
    assert checkpointed["basis"].startswith("calibrated")  # checkpointed runs do not compile: the eager run calibrates


def test_a_finished_run_measures_its_rate_and_peak_memory() -> None:
    measured = measurement(_cfg(), "cpu", 4096, 1, {"tokens_trained": 1000, "train_seconds": 50.0,
                                                    "duration_seconds": 80.0})
    assert measured["seconds_per_token"] == 0.05 and measured["outside_training_seconds"] == 30.0
    assert measured["peak_memory_gib"] > 0 and measured["tokens_per_batch"] == 4096


def test_a_shared_prefix_run_calibrates_per_unshared_token(job_store) -> None:
    """A sharing run steps through the unshared plan's rows, and the server's dry run counts every
    example's full tokens: its rate is per unshared token, and it calibrates only plans that share
    (it runs faster per such token; runs stored before the key did not share)."""
    shared = _cfg(shared_prefix=True)
    measured = measurement(shared, "cpu", 4096, 1, {"tokens_trained": 750, "tokens_trained_unshared": 1000,
                                                    "train_seconds": 50.0, "duration_seconds": 80.0})
    assert measured["seconds_per_token"] == 0.05 and measured["shared_prefix"] is True
    assert measurement(_cfg(), "cpu", 4096, 1, {})["shared_prefix"] is False  # off by default
    old = {"base_model": "smollm2-135m-instruct", "device": "cpu", "method": "lora", "tokens_per_batch": 4096,
           "world_size": 1, "seconds_per_token": 0.02, "peak_memory_gib": 11.0}
    _store_with(job_store, old)
    assert time_and_memory(shared, "cpu", SMOLLM2, _plan(), job_store)["basis"].startswith("formula")
    assert time_and_memory(_cfg(), "cpu", SMOLLM2, _plan(), job_store)["basis"].startswith("calibrated")
    _store_with(job_store, measured)
    marked = SimpleNamespace(tokens=7_500, unshared_tokens=10_000, tokens_per_batch=4096)  # the worker's own plan
    assert time_and_memory(shared, "cpu", SMOLLM2, marked, job_store)["seconds"]["expected"] == 500.0


def test_off_cuda_memory_counts_fp32_activations_and_logits() -> None:
    cpu = estimate(SMOLLM2, "lora", 0, 4096, False, 0, "cpu")
    cuda = estimate(SMOLLM2, "lora", 0, 4096, False, 0, "cuda")
    assert cpu["memory_gib"] > 2 * cuda["memory_gib"]


def test_a_running_job_has_one_eta_from_its_measured_steps(job_store) -> None:
    job = job_store.create("train", {}, heavy=False)
    job_store.claim_runnable(max_jobs=10, max_heavy=10)
    job_store.set_progress(job.id, 5, 100, "steps", "loss 1.0")
    job_store.add_event(job.id, "metrics", {"step": 5, "loss": 1.0, "eta_seconds": 1000.0})
    view = job_view(job_store, job.id)
    assert "eta_seconds" not in view.latest_metrics
    assert 990 <= view.eta_seconds <= 1000.0
