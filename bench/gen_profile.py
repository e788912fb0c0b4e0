"""Where does a knowledge job's probe generation spend its time on the GPU? (issue 21, item 1)

The tuned side of an `email` job answered 600 probes in 35.5 s on an H200: ~100 ms per decode step
of a 135M model, far above its arithmetic (well under 1 ms of compute and KV reads per step at 600
rows). This times the job's own path (`evaluate.run_probes` on the model as training left it:
Liger kernels, PEFT LoRA merged for the call, sdpa swapped in for flex_attention) against a plain
inference load of the same base (sdpa, no Liger, no PEFT), then profiles a few decode steps of
each and prints the top operators by self CPU and by CUDA time.

    python3 bench/gen_profile.py          # GPU; same staging as bench/knowledge.py (GGUF parts, datasets)

DATASET (default email-facts) picks the probes; PROBES (600) how many, as the job selects them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import knowledge as kb  # noqa: E402  (bench/knowledge.py: the fixed home, GGUF assembly, conversion)


def emit(row: dict[str, Any]) -> None:
    print(json.dumps(row), flush=True)


def _timed_probes(model: Any, tokenizer: Any, probes: list[dict[str, Any]], label: str) -> None:
    import torch

    from graphtune.tools.training.compiled_layers import sdpa_attention
    from graphtune.tools.training.evaluate import reference_lengths, run_probes

    lengths = reference_lengths(tokenizer, probes)
    for attempt in range(2):  # the first call pays one-time costs (kernels, allocator)
        torch.cuda.synchronize()
        started = time.perf_counter()
        with sdpa_attention(model):
            rows = run_probes(model, tokenizer, probes, disable_adapter=False, batch_size=128, lengths=lengths,
                              deadline=None)
        torch.cuda.synchronize()
        emit({"label": label, "attempt": attempt, "probes": len(rows), "seconds": round(time.perf_counter() - started, 2),
              "ended": sum(r["ended"] for r in rows)})


def _profiled_steps(model: Any, tokenizer: Any, probes: list[dict[str, Any]], label: str, rows: int = 600,
                    new_tokens: int = 24) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from graphtune.tools.training.compiled_layers import sdpa_attention
    from graphtune.tools.training.generation import generate_chat_detailed

    conversations = [[{"role": "user", "content": p["question"]}] for p in probes[:rows]]
    with sdpa_attention(model):
        generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=new_tokens, batch_size=None)
        torch.cuda.synchronize()
        started = time.perf_counter()
        generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=new_tokens, batch_size=None)
        torch.cuda.synchronize()
        plain = time.perf_counter() - started
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=new_tokens, batch_size=None)
            torch.cuda.synchronize()
    averages = prof.key_averages()
    emit({"label": label, "rows": len(conversations), "new_tokens": new_tokens, "seconds": round(plain, 3),
          "ms_per_step": round(1000 * plain / new_tokens, 1)})
    for key in ("self_cpu_time_total", "self_device_time_total"):
        print(f"--- {label}: top operators by {key}", flush=True)
        print(averages.table(sort_by=key, row_limit=22, max_name_column_width=60), flush=True)


def main() -> int:
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.evaluate import read_probes, select_probes
    from graphtune.tools.training.generation import load_for_inference
    from graphtune.tools.training.model_loading import load_model, load_tokenizer
    from graphtune.tools.training.presets import apply_preset
    from types import SimpleNamespace

    home, gguf = kb._prepared_home()
    base = kb._converted(home, gguf)
    dataset = os.environ.get("DATASET", "email-facts")
    probes = select_probes(read_probes(home / "datasets" / dataset), int(os.environ.get("PROBES", "600")))
    cfg = LoraJobConfig(**apply_preset({"dataset_name": dataset, "base_model": str(gguf), "output_name": "genprof"},
                                       "knowledge"))
    tokenizer = load_tokenizer(base)  # as the job's evaluation uses it (generation pads on the left itself)
    started = time.perf_counter()
    model, info = load_model(cfg, "cuda", base)
    emit({"load": "training path", "seconds": round(time.perf_counter() - started, 1), **info})
    model.eval()
    _timed_probes(model, tokenizer, probes, "training-path model (Liger + PEFT, merged)")
    _profiled_steps(model, tokenizer, probes, "training-path model")
    del model
    import torch

    torch.cuda.empty_cache()
    plain, plain_tok = load_for_inference(base, None, "cuda", SimpleNamespace(home=home, base_models_path=home / "base_models"))
    _timed_probes(plain, plain_tok, probes, "inference load (sdpa, no Liger, no PEFT)")
    _profiled_steps(plain, plain_tok, probes, "inference load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
