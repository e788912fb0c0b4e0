"""GPU benchmark: graphtune's training engine (the exact path `start_fine_tuning` runs on CUDA)
on random-init models of Llama shapes, with the baseline's synthetic length distribution.

Run it in the same device call as ../shared/bench/hf_lora_baseline.py (variant hf-default)
and report the ratio (see bench/README.md, bench/run_gpu.sh). Prints one JSON row per variant.

Variants (env VARIANTS, comma-separated):
  lora-8b   LoRA r16 q/k/v/o on Llama-3.1-8B shape, engine defaults (packing, flex, Liger, auto ckpt)
  qlora-8b  same with 4-bit NF4 (bitsandbytes), double quant, bf16 compute
  lora-1b   Llama-3.2-1B shape
  check     packed vs padded loss on the same batch (bf16 tolerance)
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path

import torch
from graphtune.tools.training import engine
from graphtune.tools.training.compiled_layers import compile_decoder_layers
from graphtune.tools.training.config import LoraJobConfig
from graphtune.tools.training.estimate import estimate
from graphtune.tools.training.model_loading import prepare_model
from graphtune.tools.training.tokenize import Example
from graphtune.tools.training.train_job import apply_checkpointing, checkpoint_layers, layers_may_compile

SHAPES = {  # same as the baseline script
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, tie_word_embeddings=False),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, tie_word_embeddings=True),
}
STEPS, WARM = int(os.environ.get("STEPS", "30")), int(os.environ.get("WARM", "10"))
OUT = Path(os.environ.get("OUT", "/tmp"))


def samples(n: int, vocab: int, seed: int = 0) -> list[Example]:
    """Baseline's distribution: log-normal lengths (median ~330, 48..2048), 40% prompt."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.exp(torch.randn(n, generator=g) * 0.6 + 5.8).clamp(48, 2048).long()
    out = []
    for length in lens.tolist():
        ids = torch.randint(100, vocab, (length,), generator=g).tolist()
        cut = int(length * 0.4)
        out.append(Example(ids, [-100] * cut + ids[cut:]))
    return out


def shape_dict(name: str) -> dict:
    layers, h = SHAPES[name]["num_hidden_layers"], SHAPES[name]["hidden_size"]
    inter, vocab = SHAPES[name]["intermediate_size"], SHAPES[name]["vocab_size"]
    per_layer = 2 * h * h + 2 * h * (h // 4) + 3 * h * inter
    return {"hidden": h, "layers": layers, "params": layers * per_layer + vocab * h * 2, "vocab": vocab}


def build(shape: str, method: str):
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = LlamaConfig(**SHAPES[shape], rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
    if method == "qlora":
        from transformers import BitsAndBytesConfig

        ckpt = Path(f"/tmp/gt_ckpt_{shape}")
        if not (ckpt / "config.json").exists():
            with torch.device("cuda"):
                m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
            m.save_pretrained(ckpt)
            del m
            gc.collect(); torch.cuda.empty_cache()
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
        return AutoModelForCausalLM.from_pretrained(ckpt, quantization_config=q, dtype=torch.bfloat16,
                                                    device_map={"": 0}, attn_implementation="flex_attention")
    with torch.device("cuda"):
        return AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="flex_attention")


def run(variant: str) -> dict:
    """variant: METHOD-SHAPE[@MAX_GIB][:TOKENS][+cc], e.g. lora-8b, lora-8b@20, qlora-8b@12:4096.
    `+cc` (an experiment, not the job's rule): compile the layers even when some are checkpointed
    (the job compiles only without checkpointing, where it was measured)."""
    variant_name = variant
    variant, _, extra = variant.partition("+")
    compile_checkpointed = extra == "cc"
    variant, _, tokens = variant.partition(":")
    variant, _, cap = variant.partition("@")
    method, shape = variant.split("-")
    torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    tokens_per_batch = int(tokens or os.environ.get("TOKENS_PER_BATCH", "0")) or None
    cfg = LoraJobConfig(base_model="random-init", dataset_name="synthetic", method=method, device="cuda",
                        batch_size=32, num_epochs=1, max_steps=STEPS, save_steps=10_000, logging_steps=1,
                        tokens_per_batch=tokens_per_batch, warmup=0, lora_dropout=0.0,
                        max_memory_gib=float(cap) if cap else None,
                        compile_layers=os.environ.get("COMPILE_LAYERS", "1") == "1")
    budget = engine.default_token_budget(cfg, "cuda")
    # as the job does (train_job._load_for_training); COMPILE_LAYERS=0: the eager engine
    weights = estimate(shape_dict(shape), method, 0, 0, True, 0, "cuda")["weights_gib"] * 2**30
    may_compile = layers_may_compile(cfg, "cuda", shape_dict(shape), budget, weights, single_process=True) \
        or (compile_checkpointed and cfg.compile_layers and method == "lora")
    model = prepare_model(build(shape, method), cfg, "cuda", liger_layers=not may_compile)
    torch.cuda.reset_peak_memory_stats()  # building a QLoRA checkpoint must not count toward training's peak
    weights_gib = torch.cuda.memory_allocated() / 2**30
    ckpt = checkpoint_layers(cfg, "cuda", shape_dict(shape), budget)
    apply_checkpointing(model, ckpt)
    compiled = compile_decoder_layers(model) if may_compile and (ckpt == 0 or compile_checkpointed) else 0
    data = samples(32 * STEPS * 2, SHAPES[shape]["vocab_size"])
    plan = engine.make_plan(data, cfg, "cuda")
    marks: list[tuple[int, float, int]] = []

    def on_metrics(m: dict) -> None:
        if "loss" in m:
            torch.cuda.synchronize()
            marks.append((m["step"], time.perf_counter(), m["tokens_seen"]))

    hooks = engine.Hooks(on_metrics=on_metrics)
    trainer = engine.build_trainer(model, plan, cfg, "cuda", Path("/tmp/gt_bench_out"), 0, hooks)
    trainer.train()
    (s0, t0, k0), (s1, t1, k1) = next(m for m in marks if m[0] == WARM), marks[-1]
    tps = (k1 - k0) / (t1 - t0)
    blocks = shape_dict(shape)["params"] - SHAPES[shape]["vocab_size"] * SHAPES[shape]["hidden_size"] * 2
    layers = SHAPES[shape]["num_hidden_layers"]
    flops_tok = (4 + 2 * ckpt / layers) * blocks + 4 * SHAPES[shape]["vocab_size"] * SHAPES[shape]["hidden_size"]
    row = {"variant": f"graphtune-{variant_name}", "tokens_per_s": round(tps), "step_s": round((t1 - t0) / (s1 - s0), 3),
           "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "weights_gib": round(weights_gib, 2), "tokens_per_batch": plan.tokens_per_batch,
           "checkpointed_layers": f"{ckpt}/{layers}", "compiled_layers": compiled, "liger": model.graphtune_fast_path["liger"],
           "mfu_pct": round(100 * tps * flops_tok / 790e12, 1), "steps_timed": s1 - s0}
    del trainer, model
    gc.collect(); torch.cuda.empty_cache()
    return row


def check_packed_equals_padded() -> dict:
    """The same batch, packed (flex document mask) and padded (sdpa): losses agree within bf16 tolerance."""
    from graphtune.tools.training.packing import collate_packed, collate_padded
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = LlamaConfig(**{**SHAPES["1b"], "num_hidden_layers": 4})
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="flex_attention")
    model.eval()
    batch = samples(8, cfg.vocab_size, seed=3)
    packed = {k: v.cuda() for k, v in collate_packed(batch).items()}
    padded = {k: v.cuda() for k, v in collate_padded(batch, 0).items()}
    with torch.no_grad():
        lp = float(model(**packed, use_cache=False).loss)
        model.set_attn_implementation("sdpa")
        lq = float(model(**padded, use_cache=False).loss)
    return {"variant": "check-packed-vs-padded", "packed_loss": round(lp, 5), "padded_loss": round(lq, 5),
            "rel_diff": round(abs(lp - lq) / lq, 5), "ok": abs(lp - lq) / lq < 2e-2}


def main() -> None:
    import transformers

    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__,
                      "gpu": torch.cuda.get_device_name(0)}), flush=True)
    rows = []
    for variant in os.environ.get("VARIANTS", "check,lora-1b,lora-8b,qlora-8b").split(","):
        try:
            row = check_packed_equals_padded() if variant == "check" else run(variant)
        except Exception as exc:  # one failing variant must not hide the rest
            import traceback

            traceback.print_exc()
            row = {"variant": variant, "error": repr(exc)[:400]}
        print(json.dumps(row), flush=True)
        rows.append(row)
    (OUT / "graphtune_bench.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(main())
