"""The `compare` job: two models answer the same probes (evaluate_knowledge), side by side.

A thin layer over the evaluation code: each model is loaded, asked, and freed in turn; the
result is an A/B table per fact type (and per probe status of a delta dataset) plus a few
probes the two answered differently.
"""

from __future__ import annotations

import gc
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from graphtune.tools.job_context import JobContext
from graphtune.tools.training.answer_cache import AnswerCache
from graphtune.tools.training.base_models import base_for_adapter
from graphtune.tools.training.evaluate import (
    CPU_GENERAL_PER_CATEGORY,
    answer_general,
    evaluate_knowledge,
    read_probes,
    select_probes,
)
from graphtune.tools.training.general_ability import summarize_general
from graphtune.tools.training.knowledge_report import summary_of
from graphtune.tools.training.evaluate_job import probes_folder
from graphtune.tools.training.registry import model_dir, read_model_metadata

DISAGREEMENTS_SHOWN = 6


def _accuracy(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, float | int]]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        if row.get(key) is not None:
            groups[row[key]].append(bool(row["correct"]))
    return {k: {"probes": len(v), "accuracy": round(sum(v) / len(v), 4)} for k, v in sorted(groups.items())}


def ab_table(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    a, b = _accuracy(rows_a, key), _accuracy(rows_b, key)
    table = [{key: k, "probes": a[k]["probes"], "a": a[k]["accuracy"], "b": b.get(k, {}).get("accuracy"),
              "delta": round(b[k]["accuracy"] - a[k]["accuracy"], 4) if k in b else None} for k in a]
    n = len(rows_a)
    acc_a = round(sum(r["correct"] for r in rows_a) / n, 4) if n else None
    acc_b = round(sum(r["correct"] for r in rows_b) / n, 4) if n else None
    table.append({key: "all", "probes": n, "a": acc_a, "b": acc_b,
                  "delta": round(acc_b - acc_a, 4) if n else None})
    return table


def run_compare_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    import torch

    from graphtune.tools.training.generation import inference_device, load_for_inference

    settings = ctx.settings
    names = {"a": params["model_a"], "b": params["model_b"]}
    dataset = params["dataset_name"]
    probes = select_probes(read_probes(probes_folder(settings, dataset)), int(params.get("max_probes", 600)),
                           int(params.get("seed", 0)))
    status = {p["id"]: p.get("status") for p in probes}
    device = inference_device(params.get("device", "auto"))
    rows: dict[str, list[dict[str, Any]]] = {}
    reports: dict[str, dict[str, Any]] = {}
    base_general: float | None = None
    for step, (label, name) in enumerate(names.items()):
        ctx.progress(step, 2, "models", f"model {label.upper()} ({name}): loading, answering {len(probes)} probes")
        meta = read_model_metadata(settings, name)
        model, tokenizer = load_for_inference(meta.get("base_model") or "", model_dir(settings, name), device, settings)
        report, answered = evaluate_knowledge(model, tokenizer, probes, device, include_base=False,
                                              time_limit_s=params.get("time_limit_s"))
        rows[label] = [{"id": r["id"], "fact_type": r["fact_type"], "question": r["question"],
                        "status": status.get(r["id"]), "correct": bool(r["tuned_correct"]),
                        "answer": r["tuned_answer"]} for r in answered]
        reports[label] = {"accuracy": (report.get("tuned") or {}).get("accuracy"),
                          "core_accuracy": (report.get("tuned") or {}).get("core_accuracy"),
                          "held_out_families_core": summary_of(report)["tuned_core"]["held_out_families"],
                          "ended_cleanly": (report.get("tuned") or {}).get("ended_cleanly"),
                          "general_ability": ((report.get("general") or {}).get("tuned") or {}).get("accuracy"),
                          "retention_loss": (report.get("retention") or {}).get("tuned_loss")}
        if label == "b":  # the base model's general ability: what the policy's max_general_drop is measured from
            base = base_for_adapter(meta, settings)
            base_rows = answer_general(model, tokenizer, disable_adapter=True, batch_size=128 if device == "cuda" else 16,
                                       cache=AnswerCache(Path(settings.base_models_path) / "answers", base),
                                       per_category=None if device == "cuda" else CPU_GENERAL_PER_CATEGORY)
            base_general = summarize_general(base_rows)["accuracy"]
        del model, tokenizer
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    ctx.check_cancel()
    disagreements = [{"question": ra["question"], "fact_type": ra["fact_type"], "status": ra["status"],
                      "a": {"answer": ra["answer"][:300], "correct": ra["correct"]},
                      "b": {"answer": rb["answer"][:300], "correct": rb["correct"]}}
                     for ra, rb in zip(rows["a"], rows["b"], strict=True) if ra["correct"] != rb["correct"]]
    result = {"model_a": names["a"], "model_b": names["b"], "dataset_name": dataset, "probes": len(probes),
              "a": reports["a"], "b": reports["b"], "by_fact_type": ab_table(rows["a"], rows["b"], "fact_type"),
              "disagreements": len(disagreements), "examples": disagreements[:DISAGREEMENTS_SHOWN],
              "compared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if any(status.values()):
        result["by_status"] = ab_table(rows["a"], rows["b"], "status")
    b_general = reports["b"]["general_ability"]
    result["general"] = {"base": base_general, "a": reports["a"]["general_ability"], "b": b_general,
                         "b_drop_points": round(100 * (base_general - b_general), 1)
                         if base_general is not None and b_general is not None else None}
    ctx.event("metrics", {"a_accuracy": reports["a"]["accuracy"], "b_accuracy": reports["b"]["accuracy"]})
    ctx.progress(2, 2, "models", "done")
    json.dumps(result)  # fail here, not in the job store, on anything unserialisable
    return result
