"""The one place job kinds are registered. A later capability adds a kind here, nothing else.

Handlers are named as "module:function" strings and imported only inside the worker
process, so registering a training kind never imports torch into the server.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphtune.tools.errors import ConfigError


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: str  # "package.module:function", called as handler(params, ctx) -> result dict
    heavy: bool  # heavy jobs (GPU training) obey max_concurrent_training_jobs
    description: str

    def load(self) -> Callable[..., dict[str, Any]]:
        module_name, _, attr = self.handler.partition(":")
        return getattr(importlib.import_module(module_name), attr)


KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("ingest", "graphtune.tools.graph.ingest:run_ingest_job", False, "Parse a Python code base into the graph."),
        JobKind("extract", "graphtune.tools.dataset.extract:run_extract_job", False, "Build a dataset from the graph."),
        JobKind("train", "graphtune.tools.training.train_job:run_train_job", True, "LoRA/QLoRA fine-tuning."),
        JobKind("merge", "graphtune.tools.training.merge:run_merge_job", True, "Fold an adapter into its base."),
        JobKind("evaluate", "graphtune.tools.training.evaluate_job:run_evaluate_job", True,
                "Closed-book probes of a knowledge dataset, base vs tuned."),
        JobKind("compare", "graphtune.tools.training.compare_job:run_compare_job", True,
                "Two models on the same probes, per fact type (A/B)."),
    )
}

# Registered only when settings.enable_test_job_kinds is on: a controllable job for the
# runner's own tests (kill, cancel, queueing) that needs no graph or model.
TEST_KINDS: dict[str, JobKind] = {
    "sleep": JobKind("sleep", "graphtune.server.job_kinds:run_sleep_job", False, "Test only: sleep in steps."),
    "sleep_heavy": JobKind("sleep_heavy", "graphtune.server.job_kinds:run_sleep_job", True, "Test only."),
}


def get_kind(name: str, *, include_test_kinds: bool) -> JobKind:
    table = {**KINDS, **(TEST_KINDS if include_test_kinds else {})}
    if name not in table:
        raise ConfigError(f"unknown job kind `{name}`.", field="kind", hint=f"Known kinds: {sorted(table)}.")
    return table[name]


def run_sleep_job(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Test-only job: `steps` steps of `step_s` seconds, a safe point after each."""
    steps, step_s = int(params.get("steps", 10)), float(params.get("step_s", 0.1))
    for step in range(steps):
        ctx.progress(step, steps, "steps", f"step {step}")
        time.sleep(step_s)
        ctx.event("metrics", {"step": step + 1})
    ctx.progress(steps, steps, "steps", "done")
    return {"steps": steps}
