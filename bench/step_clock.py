"""Where a training job's seconds go: a per-step clock and, optionally, a torch profile of a few steps.

Why: the knowledge job's training took 160 s where its steady rate says ~115 s (bench/RESULTS.md,
eleventh session), and the 135M model runs at ~8 % of the GPU's bf16 peak. Neither the job's
metrics (one rate per logged step) nor the wall time says which part is compilation, per-epoch
evaluation, host work between steps or GPU work inside them. This module wraps the engine's
`build_trainer` (bench only: the product is unchanged) so that every job the benchmark runs reports

- `step_clock`: seconds from `trainer.train()` to the first step, each step's duration (its own
  work plus what `on_step_end` callbacks do, e.g. the per-epoch eval loss), and the gaps between steps;
- with PROFILE="START:COUNT" (e.g. "40:5"): a torch.profiler trace of COUNT steps from step START,
  summarised as the GPU's busy share of that wall time, its longest idle gaps and the top operators
  by GPU and CPU time (and, with PROFILE_TRACE=1, a gzipped Chrome trace under $OUT).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

CLOCKS: list["StepClock"] = []


class StepClock:
    """Trainer callback methods (mixed into TrainerCallback by `install`)."""

    def __init__(self, profile: str | None) -> None:
        self.created = time.perf_counter()
        self.train_begin: float | None = None
        self.begins: list[float] = []
        self.ends: list[float] = []
        start, _, count = (profile or "").partition(":")
        self.profile_start = int(start) if start else None
        self.profile_count = int(count or 5)
        self.profiler: Any = None
        self.profile_summary: dict[str, Any] | None = None
        self.first_calls: dict[str, list[float]] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.train_begin = time.perf_counter()

    def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.begins.append(time.perf_counter())
        if self.profile_start is not None and state.global_step == self.profile_start and self.profiler is None:
            import torch

            _sync()
            self.profiler = torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA],
                record_shapes=False, with_stack=False)
            self.profiler.__enter__()
            self.profile_wall = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if self.profiler is not None and self.profile_summary is None \
                and state.global_step >= self.profile_start + self.profile_count:
            _sync()
            wall = time.perf_counter() - self.profile_wall
            self.profiler.__exit__(None, None, None)
            self.profile_summary = _summarise(self.profiler, wall, self.profile_count)
        self.ends.append(time.perf_counter())

    def summary(self) -> dict[str, Any]:
        if self.train_begin is None or not self.ends:
            return {}
        steps = [round(e - b, 4) for b, e in zip(self.begins, self.ends)]
        gaps = [round(b - e, 4) for e, b in zip(self.ends, self.begins[1:])]
        steady = sorted(steps[10:]) or sorted(steps)
        out = {"to_first_step_s": round(self.begins[0] - self.train_begin, 2),
               "first_10_steps_s": round(sum(steps[:10]), 2),
               "steps_s": round(sum(steps), 2), "gaps_s": round(sum(gaps), 2),
               "step_median_s": round(statistics.median(steady), 4),
               "steps_over_2x_median": [(i + 1, s) for i, s in enumerate(steps) if s > 2 * statistics.median(steady)],
               "step_seconds": steps}
        if self.profile_summary:
            out["profile"] = self.profile_summary
        return out


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _summarise(prof: Any, wall: float, steps: int) -> dict[str, Any]:
    """The GPU's busy share of the profiled wall time, the operators that hold it, and the longest
    idle gaps between kernels (with the kernels either side: a gap after a copy to the host is a sync)."""
    from torch.autograd import DeviceType

    kernels = sorted((e for e in prof.events() if e.device_type == DeviceType.CUDA), key=lambda e: e.time_range.start)
    busy_us = _union_us([(e.time_range.start, e.time_range.end) for e in kernels])
    gaps, end, before = [], None, None
    origin = kernels[0].time_range.start if kernels else 0
    for e in kernels:
        if end is not None and e.time_range.start - end > 200:
            gaps.append((round((e.time_range.start - end) / 1e3, 2), round((end - origin) / 1e3, 1), before, e.name[:60]))
        if end is None or e.time_range.end > end:
            end, before = e.time_range.end, e.name[:60]
    gaps.sort(reverse=True)
    table = prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=45, max_name_column_width=70)
    cpu_table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=70)
    out = {"steps": steps, "wall_s": round(wall, 3), "gpu_busy_s": round(busy_us / 1e6, 3),
           "gpu_busy_share": round(busy_us / 1e6 / wall, 3), "kernels": len(kernels),
           "idle_gaps_over_0_2ms": {"count": len(gaps), "total_ms": round(sum(g[0] for g in gaps), 1),
                                    "longest (ms, at ms, after, before)": gaps[:25]},
           "by_gpu_time": table, "by_cpu_time": cpu_table}
    if os.environ.get("OUT"):
        (Path(os.environ["OUT"]) / "profile_tables.txt").write_text(table + "\n\n" + cpu_table)
        if os.environ.get("PROFILE_TRACE") == "1":  # large: tens of MiB for a few steps of a 30-layer model
            trace = Path(os.environ["OUT"]) / "profile_trace.json"
            prof.export_chrome_trace(str(trace))
            with open(trace, "rb") as src, gzip.open(f"{trace}.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            trace.unlink()
    return out


def _union_us(ranges: list[tuple[float, float]]) -> float:
    """Microseconds covered by at least one of the (start, end) ranges (kernels on several streams overlap)."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(ranges):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


PHASES: dict[str, list[float]] = {}  # function -> [calls, seconds] over the process (phases of the job)
TIMED = ("resolve_base_model", "load_tokenizer", "_prepare_data", "cached_encode_all", "_load_for_training",
         "_evaluate_probes", "write_metadata", "write_loss_plot", "save_pretrained")


def _timed(module: Any, name: str) -> None:
    original = getattr(module, name, None)
    if original is None or getattr(original, "_step_clock", False):
        return

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            cell = PHASES.setdefault(name, [0, 0.0])
            cell[0] += 1
            cell[1] += time.perf_counter() - started

    wrapper._step_clock = True  # type: ignore[attr-defined]
    setattr(module, name, wrapper)


def phases() -> dict[str, dict[str, float]]:
    return {name: {"calls": int(calls), "seconds": round(seconds, 2)} for name, (calls, seconds) in PHASES.items()}


def install() -> None:
    """Wrap engine.build_trainer so each trainer gets a StepClock (one per job, in CLOCKS), and time
    the job's phases before and after training (PHASES: what `train_job` calls by these names)."""
    from graphtune.tools.training import engine, train_job

    for name in TIMED:
        _timed(train_job, name)
    _timed(engine, "evaluate_loss")
    if getattr(engine.build_trainer, "_step_clock", False):
        return
    original = engine.build_trainer

    def build_trainer(*args: Any, **kwargs: Any) -> Any:
        from transformers import TrainerCallback

        trainer = original(*args, **kwargs)
        clock = type("_StepClock", (StepClock, TrainerCallback), {})(os.environ.get("PROFILE"))
        CLOCKS.append(clock)
        trainer.add_callback(clock)
        _time_first_calls(trainer, clock)
        return trainer

    build_trainer._step_clock = True  # type: ignore[attr-defined]
    engine.build_trainer = build_trainer


def _time_first_calls(trainer: Any, clock: StepClock, first: int = 3) -> None:
    """The first micro-batches' compute_loss (forward, KL) and training_step (all of it) in seconds,
    the device synchronised at each end: where a slow first step goes (compiling, the teacher's states)."""
    import torch

    def timed(name: str, method: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls = clock.first_calls.setdefault(name, [])
            if len(calls) >= first:
                return method(*args, **kwargs)
            started = time.perf_counter()
            out = method(*args, **kwargs)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            calls.append(round(time.perf_counter() - started, 3))
            return out
        return wrapper

    trainer.compute_loss = timed("compute_loss", trainer.compute_loss)
    trainer.training_step = timed("training_step", trainer.training_step)


def _compile_counters() -> dict[str, Any]:
    """dynamo's and inductor's counters: frames and unique graphs compiled, recompiles, and the FX-graph
    and AOTAutograd cache hits and misses (a job that recompiles what an earlier process compiled shows
    here why: the twelfth session's jobs compiled their layers for 34 s after a sweep had compiled them)."""
    try:
        from torch._dynamo.utils import counters

        wanted = ("stats", "inductor", "aot_autograd", "recompiles", "graph_break")
        return {group: dict(counters[group]) for group in wanted if counters.get(group)}
    except Exception as exc:  # noqa: BLE001 - a bench diagnostic, never fatal
        return {"unavailable": str(exc)}


def _compile_times() -> str | None:
    try:
        from torch._dynamo.utils import compile_times

        return compile_times(repr="str", aggregate=True)[:3000]
    except Exception as exc:  # noqa: BLE001 - a bench diagnostic, never fatal
        return f"unavailable: {exc}"


def eager_sdpa_once() -> None:
    """One eager sdpa call on the GPU, outside any `sdpa_kernel` context, before the job (SDPA_WARM=1).

    The experiment behind it (bench/README, next GPU task 1): on sm90 the first eager SDPA call of a
    process rewrites sdpa's backend priority order once, and that order can reach the compile cache's
    key. A job whose first eager SDPA call falls inside graphtune's no-cuDNN context would then key its
    compiled layers differently from a process whose first call did not. With this call first in every
    process, a job after a warm-up sweep should find the sweep's compiled layers (compile_counters)."""
    import torch

    if torch.cuda.is_available():
        q = torch.randn(1, 2, 128, 64, device="cuda", dtype=torch.bfloat16)
        torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
        torch.cuda.synchronize()


def last_summary() -> dict[str, Any]:
    """The last job's step clock, and the phases timed so far in this process."""
    clock = CLOCKS[-1] if CLOCKS else None
    return {**(clock.summary() if clock else {}), "first_calls": clock.first_calls if clock else {},
            "phases": phases(), "dynamo_compile_times": _compile_times(), "compile_counters": _compile_counters()}


if __name__ == "__main__":
    print(json.dumps({"union_check": _union_us([(0, 2), (1, 3), (5, 6)])}))
