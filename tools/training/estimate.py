"""Rough memory and time estimates for `dry_run` and the OOM advice (stated as estimates)."""

from __future__ import annotations

from typing import Any

ACT_BYTES_PER_TOKEN_LAYER_HIDDEN = 34  # bf16 activations kept per token, layer and hidden unit (no checkpointing);
# measured 30-31 on Llama-3.1-8B with Liger + flex attention on an H100 (bench/RESULTS.md)
CKPT_BYTES_PER_TOKEN_LAYER_HIDDEN = 2  # a checkpointed layer keeps only its bf16 input
RESERVE_GIB = 1.5  # LoRA grads/optimizer, loss chunks, allocator slack
# sustained training FLOP/s. CPU: the 2-core machines here ran SmolLM2-135M LoRA 7-12x slower than the
# old 0.3e12 guess (issue 22: 55.5 s predicted, 389.6 s measured; 901 s predicted, ~86 s/step x 130 steps
# observed; bench/RESULTS.md "CPU, small scope": 16k tokens in 267 s, 9.3x): 0.3e12 / 9.4 (geometric mean)
SUSTAINED_FLOPS = {"cuda": 400e12, "mps": 10e12, "cpu": 0.032e12}
# off CUDA (no fused loss): fp32 logits, their log-softmax, its gradient and the upcast copy; with
# CPU_RUNTIME_GIB (torch, transformers, tokenizer, dataset) fitted to two SmolLM2-135M CPU runs at 4096
# tokens per micro-batch, knowledge preset: 12 GB RSS (issue 22) and 14.77 GiB (bench/RESULTS.md, 2026-12-02)
LOGITS_COPIES = 4
CPU_RUNTIME_GIB = 1.5


def layers_without_checkpointing(layers: int, hidden: int, tokens: int, free_bytes: float) -> int:
    """How many decoder layers can keep their activations (the rest are recomputed) within free_bytes."""
    full = tokens * hidden * ACT_BYTES_PER_TOKEN_LAYER_HIDDEN
    ckpt = tokens * hidden * CKPT_BYTES_PER_TOKEN_LAYER_HIDDEN
    if layers * full <= free_bytes:
        return layers
    k = int((free_bytes - full - layers * ckpt) // (full - ckpt))  # `full`: one layer recomputed at a time
    return max(0, min(layers, k))


def model_shape(base: str) -> dict[str, Any]:
    """hidden size, layers, parameters and vocabulary of `base` (a folder's config.json is read as
    JSON: no transformers import; a hub id goes through AutoConfig)."""
    config = local_config(base)
    if config is None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(base).to_dict()
    return shape_from_config(config)


def local_config(base: str) -> dict[str, Any] | None:
    """config.json of a model folder, or of a hub id's newest snapshot in the local cache; None if neither."""
    import json
    from pathlib import Path

    candidates = [Path(base) / "config.json"]
    if "/" in base and not Path(base).exists():
        from graphtune.tools.training.base_models import hub_cache_dir

        snapshots = hub_cache_dir() / f"models--{base.replace('/', '--')}" / "snapshots"
        if snapshots.is_dir():
            candidates += sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return None


def shape_from_config(config: dict[str, Any]) -> dict[str, Any]:
    text = config.get("text_config") or config
    h, layers = text["hidden_size"], text["num_hidden_layers"]
    heads = text["num_attention_heads"]
    return _shape(h, layers, text.get("intermediate_size") or 4 * h, text["vocab_size"], heads,
                  text.get("num_key_value_heads") or heads, bool(text.get("tie_word_embeddings", False)),
                  text.get("head_dim"))


def shape_from_gguf(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The same shape from a GGUF header (read_gguf_metadata), before the file is converted."""
    arch = meta.get("general.architecture")
    try:
        h, layers = meta[f"{arch}.embedding_length"], meta[f"{arch}.block_count"]
        heads = meta[f"{arch}.attention.head_count"]
        vocab = meta.get(f"{arch}.vocab_size") or meta["tokenizer.ggml.tokens#count"]
    except KeyError:
        return None
    return _shape(h, layers, meta.get(f"{arch}.feed_forward_length") or 4 * h, vocab, heads,
                  meta.get(f"{arch}.attention.head_count_kv") or heads, True, meta.get(f"{arch}.attention.key_length"))


def _shape(h: int, layers: int, inter: int, vocab: int, heads: int, kv: int, tied: bool,
           head_dim: int | None = None) -> dict[str, Any]:
    """Parameters from the shape; head_dim when the model sets its own (Gemma 3 270M: 4 heads of 256 on
    a 640 hidden size), else hidden / heads."""
    hd = head_dim or h // heads
    per_layer = 2 * h * heads * hd + 2 * h * kv * hd + 3 * h * inter
    params = layers * per_layer + vocab * h * (1 if tied else 2)
    return {"hidden": h, "layers": layers, "params": params, "vocab": vocab}


def lora_parameter_count(cfg: Any, shape: dict[str, Any]) -> int:
    """Trainable LoRA parameters, estimated (all-linear counts 7 projections per layer)."""
    per_layer = len(cfg.target_modules) if isinstance(cfg.target_modules, list) else 7
    return shape["layers"] * per_layer * cfg.lora_rank * 2 * shape["hidden"]


def estimate(shape: dict[str, Any], method: str, lora_params: int, tokens_per_batch: int, checkpointing: bool,
             total_tokens: int, device: str) -> dict[str, Any]:
    """Peak memory and training seconds from the model's shape. Off CUDA the model trains in fp32
    (activations twice the bf16 bytes) and without fused kernels: the full fp32 logits are kept about
    LOGITS_COPIES times, and torch itself is resident (CPU_RUNTIME_GIB); memory is the worker's RSS."""
    weight_bytes = shape["params"] * (0.56 if method == "qlora" else 2 if device == "cuda" else 4)
    optimizer_bytes = lora_params * 16
    per_token = shape["layers"] * shape["hidden"] * (4 if checkpointing else ACT_BYTES_PER_TOKEN_LAYER_HIDDEN)
    if checkpointing:
        per_token += shape["hidden"] * ACT_BYTES_PER_TOKEN_LAYER_HIDDEN  # one layer recomputed at a time
    activation_bytes = per_token * tokens_per_batch
    runtime_bytes = 0.0
    if device != "cuda":
        activation_bytes = 2 * activation_bytes + LOGITS_COPIES * 4 * shape.get("vocab", 0) * tokens_per_batch
        runtime_bytes = CPU_RUNTIME_GIB * 2**30
    flops_per_token = (6 if checkpointing else 4) * shape["params"]
    return {
        "memory_gib": round((weight_bytes + optimizer_bytes + activation_bytes + runtime_bytes) / 2**30 * 1.15, 2),
        "weights_gib": round(weight_bytes / 2**30, 2), "activations_gib": round(activation_bytes / 2**30, 2),
        "seconds": round(total_tokens * flops_per_token / SUSTAINED_FLOPS[device], 2),
        "note": "estimates: real use depends on kernels and sequence lengths; the first steps' metrics are exact",
    }
