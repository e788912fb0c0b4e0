"""GPU: where a small model's training step goes (SmolLM2-135M shape, random init, LoRA r64
all-linear, packed fact-sized examples). Times forward+backward+optimizer per step for each
attention/shape variant and prints torch.compile recompile counters, so per-step overheads
(mask building, recompiles) show up next to the compute.

    VARIANTS=flex:32768,flex-fixed:32768,sdpa:8192 python3 bench/small_model_speed.py

Words in a variant's name switch on more: `compile` compiles each decoder layer (regional
compilation: one compiled graph reused by all 30 layers, the LoRA'd linears inside it), `whole`
compiles the whole model instead, `cg` adds CUDA graphs (mode="reduce-overhead"), `flce` keeps
only Liger's fused linear cross-entropy (norms, RoPE, SwiGLU left to inductor to fuse). Each
variant reports its warm-up seconds (compilation) beside the steady step; one that fails is
reported with its error and the others still run.
"""

from __future__ import annotations

import gc
import json
import os
import random
import time


def smollm2_config():  # noqa: ANN201
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                       num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                       rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)


def measure(variant: str, examples: list, lengths: list[int]) -> dict:
    """One variant: a fresh model, 30 steps; the steady median after 8 warm-up steps."""
    import torch
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.model_loading import prepare_model
    from graphtune.tools.training.packing import collate_packed, plan_batches
    from transformers import LlamaForCausalLM

    name, budget = variant.split(":")
    budget = int(budget)
    attn = "sdpa" if name.startswith("sdpa") else "flex_attention"
    torch.manual_seed(0)
    model = LlamaForCausalLM(smollm2_config()).to(torch.bfloat16).cuda()
    model.config._attn_implementation = attn
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(attn)
    cfg = LoraJobConfig(base_model="x", dataset_name="x", target_modules="all-linear", lora_rank=64,
                        lora_alpha=64)
    model = prepare_model(model, cfg, "cuda", liger_layers="flce" not in name)
    mode = "reduce-overhead" if "cg" in name.split("-") else None
    if "whole" in name:
        model.compile(dynamic=False, mode=mode)
    elif "compile" in name:
        for layer in model.get_base_model().model.layers:
            layer.compile(dynamic=False, mode=mode)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
    groups = plan_batches(lengths, max_tokens=budget, max_examples=4096, seed=0)
    pad_to = budget if "fixed" in name else None
    import torch._dynamo.utils as dutils

    dutils.counters.clear()
    times, tokens, warmup = [], [], 0.0
    started = time.perf_counter()
    for step, group in enumerate(groups[:30]):
        batch = collate_packed([examples[i] for i in group], pad_to=pad_to)
        batch = {k: v.cuda(non_blocking=True) for k, v in batch.items()}
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = model(**batch, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step == 7:
            warmup = time.perf_counter() - started
        if step >= 8:
            times.append(time.perf_counter() - t0)
            tokens.append(int(batch["input_ids"].numel()))
    recompiles = {k: v for k, v in dutils.counters.get("recompiles", {}).items()} if "recompiles" in \
        dutils.counters else {}
    stats = dict(dutils.counters.get("stats", {}))
    row = {"ms_per_step_median": round(1000 * sorted(times)[len(times) // 2], 1),
           "tokens_per_second": round(sum(tokens) / sum(times)), "warmup_s": round(warmup, 1),
           "steps": len(times), "fast_path": model.graphtune_fast_path,
           "dynamo_stats": stats, "recompiles": len(recompiles),
           "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    del model, opt
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    torch._dynamo.reset()
    return row


def main() -> None:
    import torch
    from graphtune.tools.training.tokenize import Example

    rng = random.Random(0)
    lengths = [max(24, min(400, int(rng.lognormvariate(4.3, 0.45)))) for _ in range(40000)]  # ~80 tokens
    examples = [Example([rng.randrange(100, 49000) for _ in range(n)], [-100] * (n // 2) +
                        [rng.randrange(100, 49000) for _ in range(n - n // 2)]) for n in lengths]
    out = {}
    for variant in os.environ.get("VARIANTS", "flex:32768,flex-fixed:32768").split(","):
        try:
            out[variant] = measure(variant, examples, lengths)
        except Exception as exc:  # noqa: BLE001 - report it, measure the other variants
            out[variant] = {"error": f"{type(exc).__name__}: {str(exc)[:400]}"}
            torch._dynamo.reset()
            gc.collect()
            torch.cuda.empty_cache()
        print(json.dumps({variant: out[variant]}), flush=True)


if __name__ == "__main__":
    main()
