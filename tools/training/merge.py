"""The `merge` job: fold a finished LoRA adapter into its base model and save a standalone model
(for serving stacks without PEFT support). Written atomically like every other output.
`merge_into` is shared with the GGUF export, which merges into a scratch folder first."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphtune.tools.dataset.atomic import staged_folder
from graphtune.tools.errors import TrainingConfigError
from graphtune.tools.job_context import JobContext
from graphtune.tools.training.base_models import base_for_adapter
from graphtune.tools.training.registry import model_dir, read_model_metadata


def merge_into(settings: Any, model_name: str, out: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    """Load the adapter's base, fold the adapter in and save model + the adapter's tokenizer into `out`.
    bf16 on a CUDA machine, fp32 otherwise. Returns the adapter's training metadata."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = model_dir(settings, model_name)
    meta = read_model_metadata(settings, model_name)
    if not (meta.get("base_model") or meta.get("base_model_resolved")):
        raise TrainingConfigError(f"`model_name`={model_name!r} has no training_metadata.json naming its "
                                  "base model.", field="model_name", hint="Use adapters trained by graphtune.")
    progress("loading the base model")
    base = base_for_adapter(meta, settings, progress=progress, field="model_name")
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=dtype), str(adapter))
    progress("merging")
    merged = model.merge_and_unload()
    progress("saving")
    merged.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(out)
    return {**meta, "merge_dtype": str(dtype)}


def run_merge_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    settings = ctx.settings
    final = settings.models_dir / params["output_name"]
    stages = {"loading the base model": 0, "merging": 1, "saving": 2}
    ctx.progress(0, 3, "stages", "loading the base model")
    with staged_folder(final, overwrite=False, what="model", field="output_name") as tmp:
        meta = merge_into(settings, params["model_name"], tmp,
                          lambda message: ctx.progress(stages.get(message, 0), 3, "stages", message))
        (tmp / "merge_metadata.json").write_text(json.dumps({
            "merged_from": params["model_name"], "base_model": meta.get("base_model"), "dtype": meta["merge_dtype"],
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "job_id": ctx.job_id}, indent=2))
        ctx.check_cancel()
    ctx.register_model({"name": params["output_name"], "job_id": ctx.job_id, "base_model": meta.get("base_model"),
                        "dataset": (meta.get("dataset") or {}).get("name"), "method": "merged",
                        "created_at": time.time(), "path": str(final),
                        "metrics": {"merged_from": params["model_name"], **_knowledge_of(meta)}})
    ctx.progress(3, 3, "stages", "done")
    # merged_model: the name ask_model, export_model and delete_model take (not only the end of `path`)
    return {"merged_model": params["output_name"], "path": str(final), "merged_from": params["model_name"],
            "base_model": meta.get("base_model")}


def _knowledge_of(meta: dict[str, Any]) -> dict[str, Any]:
    """The adapter's closed-book scores carry over: merging changes the format, not the weights' effect."""
    from graphtune.tools.training.knowledge_report import knowledge_metrics

    return {k: v for k, v in knowledge_metrics(meta.get("knowledge")).items() if v is not None}
