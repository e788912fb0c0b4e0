"""The `ask` job: answer one prompt with a base model, a fine-tuned model, or both side by side.

Runs in a worker (the model never loads in the server). With `compare`, one load serves both
answers: the base answer is generated under `disable_adapter()`. `timeout_seconds` bounds the
generation (the model load is not counted: a GGUF's first use converts it once); when it
passes, the job fails with `generation_timeout`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from graphtune.tools.job_context import JobContext


def run_ask_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Job handler registered as kind `ask` (params built by tools/ask_model.py)."""
    from graphtune.tools.training.base_models import base_for_adapter
    from graphtune.tools.training.generation import generate_chat_detailed, inference_device, load_for_inference
    from graphtune.tools.training.registry import model_dir, read_model_metadata

    settings = ctx.settings
    adapter_name: str | None = params.get("adapter")
    compare = bool(params.get("compare"))
    device = inference_device(params.get("device", "auto"))
    ctx.progress(0, 2, "stages", "loading the model")
    started = time.time()
    adapter_dir: Path | None = None
    if adapter_name:
        adapter_dir = model_dir(settings, adapter_name)
        meta = read_model_metadata(settings, adapter_name)
        base = base_for_adapter(meta, settings, field="model",
                                progress=lambda message: ctx.progress(0, 2, "stages", message))
        base_label = meta.get("base_model") or base
    else:
        base = params["base_model"]
        base_label = params.get("merged") or base
    model, tokenizer = load_for_inference(base, adapter_dir, device, settings)
    load_seconds = round(time.time() - started, 1)
    ctx.progress(1, 2, "stages", "generating")
    messages = ([{"role": "system", "content": params["system_prompt"]}] if params.get("system_prompt") else []) \
        + [{"role": "user", "content": params["prompt"]}]
    deadline = time.time() + float(params.get("timeout_seconds", 300))
    max_new = int(params.get("max_new_tokens", 128))
    runs = [("base", base_label, True), ("tuned", adapter_name, False)] if compare else \
        [("tuned", adapter_name, False)] if adapter_name else \
        [("merged" if params.get("merged") else "base", base_label, False)]
    answers = []
    gen_started = time.time()
    for source, name, disable in runs:
        ctx.check_cancel()
        [g] = generate_chat_detailed(model, tokenizer, [messages], max_new_tokens=max_new, batch_size=1,
                                     deadline=deadline, disable_adapter=disable)
        answers.append({"source": source, "model": name, "text": g.text, "ended_cleanly": g.ended_cleanly,
                        "new_tokens": g.new_tokens})
    ctx.progress(2, 2, "stages", "done")
    main = answers[-1]
    result: dict[str, Any] = {
        "model": adapter_name or base_label, "base_model": base_label, "compare": compare, "device": device,
        "answer": main["text"], "ended_cleanly": main["ended_cleanly"], "new_tokens": main["new_tokens"],
        "max_new_tokens": max_new, "load_seconds": load_seconds,
        "generate_seconds": round(time.time() - gen_started, 2), "answers": answers}
    if compare:
        result.update(base_answer=answers[0]["text"], base_ended_cleanly=answers[0]["ended_cleanly"],
                      base_new_tokens=answers[0]["new_tokens"])
    return result
