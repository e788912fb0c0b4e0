"""The `evaluate` job: closed-book probes of a knowledge dataset, base vs a fine-tuned model.

Results go next to the adapter (`evaluations/<dataset>.json` and the answers beside it, each
written to a temp file and renamed), into training_metadata.json / the model card when the
dataset is the one the model was trained on, and into the registry row that list_models shows.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from graphtune.tools.dataset.atomic import write_text_atomic
from graphtune.tools.errors import DatasetError
from graphtune.tools.job_context import JobContext
from graphtune.tools.training.artifacts import write_metadata
from graphtune.tools.training.evaluate import evaluate_knowledge, read_probes, select_probes
from graphtune.tools.training.knowledge_report import knowledge_metrics, summary_of, write_probe_answers
from graphtune.tools.training.registry import model_dir, read_model_metadata
from graphtune.tools.training.verdict import verdict


def probes_folder(settings: Any, dataset_name: str) -> Path:
    """The dataset folder, refusing datasets without probes (only knowledge datasets have them)."""
    from graphtune.tools.training.data_files import locate

    files = locate(settings.datasets_dir, dataset_name)
    folder = files.train.parent
    if not (folder / "probes.jsonl").is_file():
        raise DatasetError(f"dataset `{dataset_name}` has no probes.jsonl, so there is nothing to ask closed-book.",
                           field="dataset_name", hint="Extract one with extract_training_data(objective='knowledge').")
    return folder


def run_evaluate_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    from graphtune.tools.training.generation import inference_device, load_for_inference

    settings = ctx.settings
    name = params["model_name"]
    adapter = model_dir(settings, name)
    meta = read_model_metadata(settings, name)
    dataset = params.get("dataset_name") or (meta.get("dataset") or {}).get("name")
    if not dataset:
        raise DatasetError(f"model `{name}` does not record its dataset; pass `dataset_name`.", field="dataset_name")
    folder = probes_folder(settings, dataset)
    probes = select_probes(read_probes(folder), int(params.get("max_probes", 600)), int(params.get("seed", 0)))
    device = inference_device(params.get("device", "auto"))
    ctx.progress(0, 3, "stages", "loading the model")
    model, tokenizer = load_for_inference(meta.get("base_model") or "", adapter, device, settings)
    ctx.progress(1, 3, "stages", f"answering {len(probes)} probes")
    report, rows = evaluate_knowledge(model, tokenizer, probes, device, include_base=params.get("include_base", True),
                                      time_limit_s=params.get("time_limit_s"))
    report["dataset"] = dataset
    report["evaluated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ctx.progress(2, 3, "stages", "writing results")
    ctx.check_cancel()
    out = adapter / "evaluations"
    out.mkdir(exist_ok=True)
    write_text_atomic(out / f"{dataset}.json", json.dumps(report, indent=2))
    write_probe_answers(out / f".{dataset}.answers.tmp", rows)
    os.replace(out / f".{dataset}.answers.tmp", out / f"{dataset}.answers.jsonl")
    if meta and dataset == (meta.get("dataset") or {}).get("name"):
        meta["knowledge"] = report
        write_metadata(adapter, meta)
    ctx.register_model({"name": name, "job_id": meta.get("job_id"), "base_model": meta.get("base_model"),
                        "dataset": (meta.get("dataset") or {}).get("name"), "method": (meta.get("config") or {}).get(
                            "method"), "created_at": adapter.stat().st_mtime, "path": str(adapter),
                        "metrics": (meta.get("evaluation") or {}) | knowledge_metrics(report)})
    ctx.progress(3, 3, "stages", "done")
    summary = summary_of(report)
    return {"model_name": name, "dataset_name": dataset, "results_path": str(out / f"{dataset}.json"), **summary,
            "verdict": verdict(summary, model=name, dataset=dataset, base_model=meta.get("base_model"))}
