"""The one place job kinds are registered. A later capability adds a kind here, nothing else.

Handlers are named as "module:function" strings and imported only inside the worker
process, so registering a training kind never imports torch into the server.

Each kind also says which shared resources a job writes and reads, derived from its params
(`resources(params, settings) -> Resources`): the embedded graph store (`graph:embedded`),
a Neo4j graph (`graph:neo4j`), a dataset (`dataset:<name>`), a model (`model:<name>`). The
job store starts a job only when its resources are free (one writer, or any number of
readers, per resource) -- see JobStore.claim_runnable. A kind that touches nothing shared
keeps the default (no resources).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphtune.tools.errors import ConfigError


@dataclass(frozen=True)
class Resources:
    """What a job writes and reads while it runs. `creates`: writes that must produce something
    new (a model's output_name, a dataset without overwrite): a second active job creating the
    same name is refused when it is submitted, since only one of them could ever publish."""

    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    creates: tuple[str, ...] = ()


def no_resources(params: dict[str, Any], settings: Any) -> Resources:
    return Resources()


def graph_resource(store: str | None) -> str:
    return f"graph:{store or 'embedded'}"


def dataset_resource(name: str | None) -> tuple[str, ...]:
    """A graphtune dataset by name; a .jsonl path outside datasets/ is nobody's output: no claim."""
    if not name or "/" in name or name.endswith(".jsonl"):
        return ()
    return (f"dataset:{name}",)


def ingest_resources(params: dict[str, Any], settings: Any) -> Resources:
    return Resources(writes=(graph_resource(params.get("write_to")),))


def extract_resources(params: dict[str, Any], settings: Any) -> Resources:
    dataset = dataset_resource(params["dataset_name"])
    return Resources(writes=dataset, reads=(graph_resource(params.get("source") or settings.graph_backend),),
                     creates=() if params.get("overwrite") else dataset)


def train_resources(params: dict[str, Any], settings: Any) -> Resources:
    cfg = params.get("config") or {}
    reads = dataset_resource(cfg.get("dataset_name"))
    if cfg.get("init_adapter"):
        reads += (f"model:{cfg['init_adapter']}",)
    output = () if cfg.get("dry_run") or not cfg.get("output_name") else (f"model:{cfg['output_name']}",)
    return Resources(writes=output, reads=reads, creates=() if params.get("resume") else output)


def merge_resources(params: dict[str, Any], settings: Any) -> Resources:
    output = (f"model:{params['output_name']}",)
    return Resources(writes=output, reads=(f"model:{params['model_name']}",), creates=output)


def export_resources(params: dict[str, Any], settings: Any) -> Resources:
    """Writes the model's gguf/ folder (one export of a model at a time)."""
    return Resources(writes=(f"model:{params['model_name']}",))


def evaluate_resources(params: dict[str, Any], settings: Any) -> Resources:
    """Reads the model and the dataset's probes; writes the model's evaluation files."""
    return Resources(writes=(f"model:{params['model_name']}",), reads=(f"dataset:{params['dataset_name']}",))


def ask_resources(params: dict[str, Any], settings: Any) -> Resources:
    """Reads the fine-tuned model it answers with (none when asking a base model)."""
    model = params.get("adapter")
    return Resources(reads=(f"model:{model}",) if model else ())


def compare_resources(params: dict[str, Any], settings: Any) -> Resources:
    """Reads both models and the dataset's probes."""
    reads = tuple(f"model:{params[k]}" for k in ("model_a", "model_b") if params.get(k))
    return Resources(reads=reads + ((f"dataset:{params['dataset_name']}",) if params.get("dataset_name") else ()))


def promote_resources(params: dict[str, Any], settings: Any) -> Resources:
    """Reads the retrained model (and writes its retrain.json); the alias is one SQL row."""
    return Resources(reads=(f"model:{params['model_b']}",))


def sleep_resources(params: dict[str, Any], settings: Any) -> Resources:
    """The sleep kinds take their resources from their params (tests of the claims)."""
    return Resources(writes=tuple(params.get("writes", ())), reads=tuple(params.get("reads", ())),
                     creates=tuple(params.get("creates", ())))


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: str  # "package.module:function", called as handler(params, ctx) -> result dict
    heavy: bool  # heavy jobs (GPU training) obey max_concurrent_training_jobs
    description: str
    resources: Callable[[dict[str, Any], Any], Resources] = no_resources  # (params, settings) -> Resources

    def load(self) -> Callable[..., dict[str, Any]]:
        module_name, _, attr = self.handler.partition(":")
        return getattr(importlib.import_module(module_name), attr)


KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind("ingest", "graphtune.tools.graph.ingest:run_ingest_job", False,
                "Parse a Python code base into the graph.", ingest_resources),
        JobKind("extract", "graphtune.tools.dataset.extract:run_extract_job", False, "Build a dataset from the graph.",
                extract_resources),
        JobKind("train", "graphtune.tools.training.train_job:run_train_job", True, "LoRA/QLoRA fine-tuning.",
                train_resources),
        JobKind("merge", "graphtune.tools.training.merge:run_merge_job", True, "Fold an adapter into its base.",
                merge_resources),
        JobKind("export", "graphtune.tools.training.gguf_export:run_export_job", True,
                "Merge and convert a model to GGUF for llama.cpp / Ollama.", export_resources),
        JobKind("evaluate", "graphtune.tools.training.evaluate_job:run_evaluate_job", True,
                "Closed-book probes of a knowledge dataset, base vs tuned.", evaluate_resources),
        JobKind("ask", "graphtune.tools.training.ask_job:run_ask_job", True,
                "Answer a prompt with a base or fine-tuned model (loads the model: GPU work, so heavy).",
                ask_resources),
        JobKind("compare", "graphtune.tools.training.compare_job:run_compare_job", True,
                "Two models on the same probes, per fact type (A/B).", compare_resources),
        JobKind("promote", "graphtune.tools.training.retrain:run_promote_job", False,
                "A retrain's last step: move the alias to the new model if the policy holds.", promote_resources),
    )
}

# Registered only when settings.enable_test_job_kinds is on: a controllable job for the
# runner's own tests (kill, cancel, queueing) that needs no graph or model.
TEST_KINDS: dict[str, JobKind] = {
    "sleep": JobKind("sleep", "graphtune.server.job_kinds:run_sleep_job", False, "Test only: sleep in steps.",
                     sleep_resources),
    "sleep_heavy": JobKind("sleep_heavy", "graphtune.server.job_kinds:run_sleep_job", True, "Test only.",
                           sleep_resources),
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
    if params.get("fail"):
        raise ConfigError("this test job was told to fail.", field="fail")
    ctx.progress(steps, steps, "steps", "done")
    return {"steps": steps, "parent_result": ctx.parent_result()} if params.get("echo_parent") else {"steps": steps}
