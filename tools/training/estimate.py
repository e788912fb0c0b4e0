"""Rough memory and time estimates for `dry_run` and the OOM advice (stated as estimates)."""

from __future__ import annotations

from typing import Any

ACT_BYTES_PER_TOKEN_LAYER_HIDDEN = 34  # bf16 activations kept per token, layer and hidden unit (no checkpointing);
# measured 30-31 on Llama-3.1-8B with Liger + flex attention on an H100 (bench/RESULTS.md)
CKPT_BYTES_PER_TOKEN_LAYER_HIDDEN = 2  # a checkpointed layer keeps only its bf16 input
RESERVE_GIB = 1.5  # LoRA grads/optimizer, loss chunks, allocator slack


def layers_without_checkpointing(layers: int, hidden: int, tokens: int, free_bytes: float) -> int:
    """How many decoder layers can keep their activations (the rest are recomputed) within free_bytes."""
    full = tokens * hidden * ACT_BYTES_PER_TOKEN_LAYER_HIDDEN
    ckpt = tokens * hidden * CKPT_BYTES_PER_TOKEN_LAYER_HIDDEN
    if layers * full <= free_bytes:
        return layers
    k = int((free_bytes - full - layers * ckpt) // (full - ckpt))  # `full`: one layer recomputed at a time
    return max(0, min(layers, k))


def model_shape(base: str) -> dict[str, Any]:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(base)
    text = getattr(cfg, "text_config", None) or cfg
    h, layers = text.hidden_size, text.num_hidden_layers
    inter = getattr(text, "intermediate_size", 4 * h)
    vocab = text.vocab_size
    heads, kv = text.num_attention_heads, getattr(text, "num_key_value_heads", text.num_attention_heads)
    per_layer = 2 * h * h + 2 * h * (h * kv // heads) + 3 * h * inter
    params = layers * per_layer + vocab * h * (1 if getattr(text, "tie_word_embeddings", False) else 2)
    return {"hidden": h, "layers": layers, "params": params, "vocab": vocab}


def estimate(shape: dict[str, Any], method: str, lora_params: int, tokens_per_batch: int, checkpointing: bool,
             total_tokens: int, device: str) -> dict[str, Any]:
    weight_bytes = shape["params"] * (0.56 if method == "qlora" else 2 if device == "cuda" else 4)
    optimizer_bytes = lora_params * 16
    per_token = shape["layers"] * shape["hidden"] * (4 if checkpointing else ACT_BYTES_PER_TOKEN_LAYER_HIDDEN)
    if checkpointing:
        per_token += shape["hidden"] * ACT_BYTES_PER_TOKEN_LAYER_HIDDEN  # one layer recomputed at a time
    activation_bytes = per_token * tokens_per_batch
    flops_per_token = (6 if checkpointing else 4) * shape["params"]
    peak = {"cuda": 400e12, "mps": 10e12, "cpu": 0.3e12}[device]  # sustained bf16/fp32 guesses
    return {
        "memory_gib": round((weight_bytes + optimizer_bytes + activation_bytes) / 2**30 * 1.15, 2),
        "weights_gib": round(weight_bytes / 2**30, 2), "activations_gib": round(activation_bytes / 2**30, 2),
        "seconds": round(total_tokens * flops_per_token / peak, 1),
        "note": "estimates: real use depends on kernels and sequence lengths; the first steps' metrics are exact",
    }
