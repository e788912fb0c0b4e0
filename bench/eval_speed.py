"""Issue 21 items 1 and 3 on the GPU: the tuned side of a knowledge job's evaluation (<= 15 s) and
a second job on the same base starting within 10 s of submit. Prints one JSON line per measurement.

Same inputs as bench/knowledge.py (`python bench/knowledge.py prep` here; on the GPU the GGUF is
reassembled from /tmp/gguf-parts, the dataset comes from .devcarry/knowledge):

    python3 bench/eval_speed.py            # all: job A, job B, compare
    python3 bench/eval_speed.py job-a      # the knowledge job (defaults, fresh process): trains the model
                                           # `evalspeed-a`, answers base + tuned (fills the answer cache),
                                           # timeline submit -> first step (cold: conversion, tokenizing)
    python3 bench/eval_speed.py job-b      # a second job on the same base in a fresh process (warm caches),
                                           # STARTUP_STEPS steps: timeline submit -> first step, and the job's
                                           # own evaluation seconds with the base answers cached
    python3 bench/eval_speed.py compare    # in one process on model A: the tuned side (600 probes + 180
                                           # general questions) the old way (unmerged, batches of 128) vs
                                           # merged / memory-sized batches, answers compared row by row;
                                           # base answers and weights before vs after a merged run; the
                                           # job's evaluate_knowledge with the base answers cached

Knobs: EVAL_HOME (default /tmp/evalspeed-home; keep it between device calls on a warm machine),
MODEL (a model folder name under EVAL_HOME/models to compare instead of `evalspeed-a`, e.g. one
made by knowledge.py with KNOWLEDGE_HOME=EVAL_HOME), STARTUP_STEPS (5), SKIP_OLD=1 (compare: no
unmerged variants, the slow ones), KEY=VALUE LoraJobConfig overrides for the jobs.
"""

from __future__ import annotations

import time

_T0 = time.time()  # before the heavy imports: a worker process pays them too

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import knowledge as kb  # noqa: E402  (bench/knowledge.py: Ctx, GGUF and dataset staging)

HOME = Path(os.environ.get("EVAL_HOME", "/tmp/evalspeed-home"))
MODEL_A = "evalspeed-a"


def emit(row: dict[str, Any]) -> None:
    print(json.dumps(row), flush=True)


def _stage() -> Path:
    (HOME / "models").mkdir(parents=True, exist_ok=True)
    if not (HOME / "datasets").exists():
        shutil.copytree(kb.CARRY / "datasets", HOME / "datasets")
    return kb._assemble_gguf(HOME)


# ---------------------------------------------------------------- jobs (item 3: start in seconds)

class Timeline:
    """Wall-clock marks relative to the moment the parent spawned this process (a worker's start)."""

    def __init__(self, origin: float) -> None:
        self.origin, self.marks = origin, [("interpreter started", round(_T0 - origin, 2))]

    def mark(self, label: str) -> float:
        at = round(time.time() - self.origin, 2)
        self.marks.append((label, at))
        return at

    def wrap(self, module: Any, attr: str, label: str, limit: int = 2) -> None:
        fn, calls = getattr(module, attr), [0]

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] > limit:
                return fn(*args, **kwargs)
            self.mark(f"{label} start")
            try:
                return fn(*args, **kwargs)
            finally:
                self.mark(f"{label} end")

        setattr(module, attr, wrapped)


def _instrument(timeline: Timeline) -> dict[str, float]:
    from transformers import TrainerCallback

    from graphtune.tools.training import engine, model_loading, train_job

    firsts: dict[str, float] = {}
    timeline.wrap(train_job, "resolve_base_model", "resolve_base_model (conversion cached?)", 1)
    timeline.wrap(train_job, "load_tokenizer", "load_tokenizer", 1)
    timeline.wrap(train_job, "_prepare_data", "prepare_data (read, replay, tokenize)", 1)
    timeline.wrap(train_job, "cached_encode_all", "tokenize (cached_encode_all)", 2)
    timeline.wrap(train_job, "load_model", "load_model", 1)
    timeline.wrap(model_loading, "ensure_attention_works", "flex_attention check (compile)", 1)
    timeline.wrap(engine, "evaluate_loss", "evaluate_loss (base eval loss before training)", 1)
    build = engine.build_trainer

    class _FirstStep(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if "first_step_begin" not in firsts:
                firsts["first_step_begin"] = timeline.mark("first optimizer step begins")

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if "first_step_end" not in firsts:
                firsts["first_step_end"] = timeline.mark("first optimizer step done")

    def build_trainer(*args: Any, **kwargs: Any) -> Any:
        timeline.mark("build_trainer start")
        trainer = build(*args, **kwargs)
        trainer.add_callback(_FirstStep())
        train = trainer.train

        def timed_train(*a: Any, **k: Any) -> Any:
            firsts["train_entered"] = timeline.mark("trainer.train entered")
            return train(*a, **k)

        trainer.train = timed_train
        return trainer

    engine.build_trainer = build_trainer
    return firsts


def run_job(label: str, extra: dict[str, Any]) -> int:
    """One train job in this (fresh) process, timed from the parent's spawn."""
    timeline = Timeline(float(os.environ.get("SPAWNED_AT") or _T0))
    gguf = _stage()
    from graphtune.tools.training.presets import apply_preset
    from graphtune.tools.training.train_job import run_train_job

    timeline.mark("graphtune imported")
    firsts = _instrument(timeline)
    shutil.rmtree(HOME / "models" / label, ignore_errors=True)
    shutil.rmtree(HOME / "work" / f"job_{label}", ignore_errors=True)
    ctx = kb.Ctx(HOME, f"job_{label}")
    cfg = apply_preset({"dataset_name": kb.DATASET, "base_model": str(gguf), "output_name": label,
                        "save_steps": 100000, **extra}, "knowledge")
    submitted = timeline.mark("submit (run_train_job called)")
    started = time.perf_counter()
    result = run_train_job({"config": cfg}, ctx)
    wall = time.perf_counter() - started
    knowledge = json.loads((HOME / "models" / label / "training_metadata.json").read_text()).get("knowledge") or {}
    first = firsts.get("first_step_begin")
    emit({"measure": "job", "label": label,
          "submit_to_first_step_s": round(first - submitted, 2) if first is not None else None,
          "spawn_to_first_step_s": first, "job_wall_s": round(wall, 1), "train_seconds": result["train_seconds"],
          "steps": result["steps"], "tokens_per_second": result["tokens_per_second"],
          "evaluation_seconds": knowledge.get("seconds"),
          "accuracy": {side: (knowledge.get(side) or {}).get("accuracy") for side in ("base", "tuned")},
          "general_accuracy": {side: ((knowledge.get("general") or {}).get(side) or {}).get("accuracy")
                               for side in ("base", "tuned")},
          "timeline": [m for m in timeline.marks if first is None or m[1] <= (firsts.get("first_step_end") or 1e9)],
          "job_progress": ctx.events})
    return 0


def spawn(mode: str, args: list[str]) -> int:
    env = {**os.environ, "SPAWNED_AT": repr(time.time()), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, __file__, mode, *args], env=env, check=False).returncode


# ---------------------------------------------------------------- compare (item 1: evaluation in seconds)

DEVICE = os.environ.get("DEVICE", "cuda")  # cpu: a plumbing smoke test only (with LIMIT_PROBES, GENERAL_PER_CATEGORY)


def _sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _old_probes(model: Any, tokenizer: Any, probes: list[dict[str, Any]], lengths: list[int], *, merge: bool,
                batch_size: int = 128) -> list[Any]:
    """run_probes as it was before this change: one generate call per group of 128 probes sorted by
    reference length, each with the group's budget, batches of 128."""
    from graphtune.tools.training.evaluate import answer_budget
    from graphtune.tools.training.generation import generate_chat_detailed

    order = sorted(range(len(probes)), key=lambda i: lengths[i])
    answers: list[Any] = [None] * len(probes)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        budget = answer_budget(max(lengths[i] for i in chunk))
        out = generate_chat_detailed(model, tokenizer, [[{"role": "user", "content": probes[i]["question"]}]
                                                        for i in chunk],
                                     max_new_tokens=budget, batch_size=batch_size, merge=merge)
        for i, generation in zip(chunk, out, strict=True):
            answers[i] = generation
    return answers


def _new_probes(model: Any, tokenizer: Any, probes: list[dict[str, Any]], lengths: list[int], *,
                merge: bool) -> list[Any]:
    """run_probes now: per-probe budgets of the same groups, one call, memory-sized batches."""
    from graphtune.tools.training.evaluate import probe_budgets
    from graphtune.tools.training.generation import generate_chat_detailed

    return generate_chat_detailed(model, tokenizer, [[{"role": "user", "content": p["question"]}] for p in probes],
                                  max_new_tokens=probe_budgets(lengths, 128), batch_size=None, merge=merge)


def _general(model: Any, tokenizer: Any, questions: list[dict[str, Any]], *, merge: bool,
             batch_size: int | None) -> list[Any]:
    from graphtune.tools.training.evaluate import GENERAL_MAX_NEW_TOKENS
    from graphtune.tools.training.generation import generate_chat_detailed

    return generate_chat_detailed(model, tokenizer, [[{"role": "user", "content": q["question"]}] for q in questions],
                                  max_new_tokens=GENERAL_MAX_NEW_TOKENS, batch_size=batch_size, merge=merge)


def compare(model_name: str) -> int:
    import torch

    from graphtune.tools.dataset.probe_scoring import score_answer
    from graphtune.tools.training.answer_cache import AnswerCache
    from graphtune.tools.training.base_models import resolve_base_model
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.evaluate import (
        evaluate_knowledge,
        general_questions,
        read_probes,
        reference_lengths,
        run_probes,
        select_probes,
    )
    from graphtune.tools.training.general_ability import score_general
    from graphtune.tools.training.generation import (
        _prompt_ids,
        auto_batch_size,
        generate_chat_detailed,
        load_for_inference,
    )
    from graphtune.tools.training.lora_merge import merged_lora
    from graphtune.tools.training.presets import apply_preset

    gguf = _stage()
    settings = kb.Ctx(HOME, "job_compare").settings
    base = resolve_base_model(str(gguf), settings)
    started = time.perf_counter()
    model, tokenizer = load_for_inference(str(gguf), HOME / "models" / model_name, DEVICE, settings)
    emit({"measure": "load_for_inference", "seconds": round(time.perf_counter() - started, 2), "model": model_name,
          "gpu": torch.cuda.get_device_name(0) if DEVICE == "cuda" else None, "torch": torch.__version__,
          "transformers": __import__("transformers").__version__, "peft": __import__("peft").__version__})
    cfg = LoraJobConfig.from_dict(apply_preset({"dataset_name": kb.DATASET, "base_model": str(gguf)}, "knowledge"))
    probes = select_probes(read_probes(HOME / "datasets" / kb.DATASET), cfg.max_probes, cfg.seed)
    probes = probes[:int(os.environ.get("LIMIT_PROBES") or len(probes))]
    per_category = os.environ.get("GENERAL_PER_CATEGORY")
    questions = general_questions(int(per_category) if per_category else None)
    lengths = reference_lengths(tokenizer, probes)
    inner = model.get_base_model()
    calls = [0]
    inner.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    prompt_max = max(len(_prompt_ids(tokenizer, [{"role": "user", "content": p["question"]}])) for p in probes)

    warm = [[{"role": "user", "content": p["question"]}] for p in probes[:16]]
    for merge in (False, True):  # CUDA context, cuBLAS handles, sdpa kernels: not charged to any variant
        generate_chat_detailed(model, tokenizer, warm, max_new_tokens=8, batch_size=16, merge=merge)
    _sync()
    started = time.perf_counter()
    with merged_lora(model) as merged:
        _sync()
        entered = time.perf_counter() - started
    _sync()
    emit({"measure": "merge_overhead", "merged": merged, "merge_and_restore_seconds": round(
        time.perf_counter() - started, 3), "merge_seconds": round(entered, 3),
          "auto_batch_probes": auto_batch_size(model, prompt_max, 64),
          "auto_batch_general": auto_batch_size(model, prompt_max, 128), "probes": len(probes),
          "general_questions": len(questions)})

    base_weights = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" not in k}
    started = time.perf_counter()
    base_before = run_probes(model, tokenizer, probes, disable_adapter=True, batch_size=128, lengths=lengths,
                             deadline=None)
    _sync()
    base_seconds = time.perf_counter() - started

    variants = [("old: unmerged, batches of 128", False, "old"), ("merged, batches of 128", True, "old"),
                ("unmerged, memory-sized batches", False, "new"), ("new: merged, memory-sized batches", True, "new")]
    if os.environ.get("SKIP_OLD") == "1":
        variants = [v for v in variants if v[1]]
    reference: dict[str, list[Any]] | None = None
    for label, merge, way in variants:
        calls[0] = 0
        _sync()
        started = time.perf_counter()
        probe_out = (_old_probes if way == "old" else _new_probes)(model, tokenizer, probes, lengths, merge=merge)
        _sync()
        probe_seconds, probe_calls = time.perf_counter() - started, calls[0]
        general_out = _general(model, tokenizer, questions, merge=merge, batch_size=128 if way == "old" else None)
        _sync()
        seconds = time.perf_counter() - started
        texts = {"probes": [g.text for g in probe_out], "general": [g.text for g in general_out]}
        reference = reference or texts
        row = {"measure": "tuned_side", "variant": label, "seconds": round(seconds, 2),
               "probe_seconds": round(probe_seconds, 2), "general_seconds": round(seconds - probe_seconds, 2),
               "forward_calls": calls[0], "ms_per_forward": round(1000 * seconds / max(1, calls[0]), 1),
               "probe_forward_calls": probe_calls,
               "probe_accuracy": round(sum(score_answer(g.text, p["gold"])[0] for g, p in zip(
                   probe_out, probes, strict=True)) / len(probes), 4),
               "general_accuracy": round(sum(score_general(g.text, q["gold"]) for g, q in zip(
                   general_out, questions, strict=True)) / len(questions), 4),
               "probes_ended": sum(g.ended_cleanly for g in probe_out),
               "same_probe_answers_as_first_variant": sum(a == b for a, b in zip(texts["probes"], reference["probes"])),
               "same_general_answers_as_first_variant": sum(a == b for a, b in zip(texts["general"],
                                                                                   reference["general"]))}
        emit(row)

    started = time.perf_counter()
    base_after = run_probes(model, tokenizer, probes, disable_adapter=True, batch_size=128, lengths=lengths,
                            deadline=None)
    _sync()
    after = {k: v for k, v in model.state_dict().items() if "lora_" not in k}
    emit({"measure": "base_unchanged_after_merged_runs",
          "answers_identical": [r["answer"] for r in base_before] == [r["answer"] for r in base_after],
          "weights_bit_identical": all(torch.equal(base_weights[k], after[k]) for k in base_weights),
          "base_side_probe_seconds": [round(base_seconds, 2), round(time.perf_counter() - started, 2)]})
    del base_weights

    cache = AnswerCache(Path(settings.base_models_path) / "answers", base)
    for attempt in (1, 2) if os.environ.get("SKIP_JOB_EVAL") != "1" else ():
        report, _ = evaluate_knowledge(model, tokenizer, probes, DEVICE, include_base=True, cache=cache)
        emit({"measure": "evaluate_knowledge (the job's evaluation)", "attempt": attempt, "seconds": report["seconds"],
              "tuned_accuracy": report["tuned"]["accuracy"], "base_accuracy": report["base"]["accuracy"],
              "general": {k: (report.get("general") or {}).get(k) for k in ("questions", "drop_points")}})
    return 0


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "all"
    extra = kb._overrides(argv[1:])
    if mode == "job-a":
        return run_job(MODEL_A, extra)
    if mode == "job-b":
        return run_job("evalspeed-b", {"max_steps": int(os.environ.get("STARTUP_STEPS", "5")), **extra})
    if mode == "compare":
        return compare(os.environ.get("MODEL", MODEL_A))
    if mode == "all":
        _stage()
        if not (HOME / "models" / os.environ.get("MODEL", MODEL_A)).is_dir():
            spawn("job-a", argv[1:])
        spawn("job-b", argv[1:])
        return spawn("compare", [])
    raise SystemExit(f"unknown mode {mode!r}: all, job-a, job-b or compare")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
