"""The `merge` job: fold a finished LoRA adapter into its base model and save a standalone model
(for serving stacks without PEFT support). Written atomically like every other output."""

from __future__ import annotations

import json
import time
from typing import Any

from graphtune.tools.dataset.atomic import staged_folder
from graphtune.tools.errors import TrainingConfigError
from graphtune.tools.job_context import JobContext
from graphtune.tools.training.base_models import base_for_adapter
from graphtune.tools.training.registry import model_dir, read_model_metadata


def run_merge_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = ctx.settings
    adapter = model_dir(settings, params["model_name"])
    meta = read_model_metadata(settings, params["model_name"])
    if not (meta.get("base_model") or meta.get("base_model_resolved")):
        raise TrainingConfigError(f"`model_name`={params['model_name']!r} has no training_metadata.json naming its "
                                  "base model.", field="model_name", hint="Merge adapters trained by graphtune.")
    final = settings.models_dir / params["output_name"]
    ctx.progress(0, 3, "stages", "loading the base model")
    base = base_for_adapter(meta, settings, progress=lambda message: ctx.progress(0, 3, "stages", message),
                            field="model_name")
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=dtype), str(adapter))
    ctx.progress(1, 3, "stages", "merging")
    merged = model.merge_and_unload()
    ctx.progress(2, 3, "stages", "saving")
    with staged_folder(final, overwrite=False, what="model", field="output_name") as tmp:
        merged.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(tmp)
        (tmp / "merge_metadata.json").write_text(json.dumps({
            "merged_from": params["model_name"], "base_model": meta.get("base_model"), "dtype": str(dtype),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "job_id": ctx.job_id}, indent=2))
        ctx.check_cancel()
    ctx.register_model({"name": params["output_name"], "job_id": ctx.job_id, "base_model": meta.get("base_model"),
                        "dataset": (meta.get("dataset") or {}).get("name"), "method": "merged",
                        "created_at": time.time(), "path": str(final),
                        "metrics": {"merged_from": params["model_name"], **_knowledge_of(meta)}})
    ctx.progress(3, 3, "stages", "done")
    return {"path": str(final), "merged_from": params["model_name"], "base_model": meta.get("base_model")}


def _knowledge_of(meta: dict[str, Any]) -> dict[str, Any]:
    """The adapter's closed-book scores carry over: merging changes the format, not the weights' effect."""
    from graphtune.tools.training.knowledge_report import knowledge_metrics

    return {k: v for k, v in knowledge_metrics(meta.get("knowledge")).items() if v is not None}
