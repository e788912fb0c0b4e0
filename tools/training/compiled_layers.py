"""Compile each decoder layer of a model trained on one GPU, and run the layers eagerly where shapes vary.

A small model's training step is spent on many small, memory-bound operations (norms, RoPE, SwiGLU,
the LoRA adds) as much as on its matrix products. Regional compilation (`torch.compile` of each
decoder layer; all layers run the same code, so one graph serves them all) fuses them: on one H200
the SmolLM2-135M step of 49,152 tokens went from 457.6 to 363.3 ms (1.26x) and its peak memory from
48.9 to 40.8 GiB, after ~10-25 s of compiling at the first steps (bench/small_model_speed.py); the
knowledge job's steps 1.36x. It is on by default (`compile_layers`): compiling changes only rounding,
and same-call pairs with eager runs scored alike on held-out templates, families and general ability
(bench/RESULTS.md, ninth session; the first run, in another call, had scored lower).

A compiled layer is specialised to one input shape. Training rows have one (packed rows are padded
to a fixed shape on CUDA); the work whose shapes vary (the evaluation loss, answering probes, the
replay teacher's states, computed once at the first step) runs the same layers eagerly inside
`eager_layers` (or `sdpa_attention`), so it never recompiles.
Liger's norm, RoPE and SwiGLU kernels are left out when the layers are compiled (inductor fuses
those itself, and dynamo cannot trace Liger's RMSNorm kernel); its fused linear cross-entropy,
outside the layers, stays.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from graphtune.tools.training.config import LoraJobConfig


def wants_compiled_layers(cfg: LoraJobConfig, device: str, *, single_process: bool, checkpointed_layers: int) -> bool:
    """Compile only where it was measured: LoRA (QLoRA's 4-bit layers break dynamo's graphs) on
    one CUDA device, without activation checkpointing (its recomputation re-enters the layer)."""
    return (cfg.compile_layers and device == "cuda" and cfg.method == "lora" and cfg.packing and single_process
            and checkpointed_layers == 0)


def decoder_layers(model: Any) -> list[Any]:
    """The decoder layers of a (PEFT-wrapped) causal LM; [] when the model does not expose them."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    layers = getattr(decoder, "layers", None)
    return list(layers) if layers is not None else []


def compile_decoder_layers(model: Any, *, backend: str = "inductor") -> int:
    """Compile each decoder layer in place (parameter names and checkpoints are unchanged); returns
    how many. A layer that fails to compile runs eagerly (dynamo's error suppression) rather than
    failing the job: compiling is a speed-up, never a requirement."""
    import torch

    layers = decoder_layers(model)
    if not layers:
        return 0
    torch._dynamo.config.suppress_errors = True
    for layer in layers:
        layer.compile(backend=backend, dynamic=False)
    return len(layers)


@contextmanager
def eager_layers(model: Any) -> Iterator[None]:
    """Run the decoder layers uncompiled inside the block (shapes that vary would each recompile);
    what still compiles in it (flex_attention, per row length) raises again on failure."""
    import torch

    saved = [(layer, layer._compiled_call_impl) for layer in decoder_layers(model)
             if getattr(layer, "_compiled_call_impl", None) is not None]
    for layer, _ in saved:
        layer._compiled_call_impl = None
    try:
        with torch._dynamo.config.patch(suppress_errors=False):
            yield
    finally:
        for layer, compiled in saved:
            layer._compiled_call_impl = compiled


@contextmanager
def sdpa_attention(model: Any) -> Iterator[None]:
    """Evaluate with sdpa: inductor cannot always build flex_attention's inference kernel (seen on
    torch 2.11 with small head dims); sdpa honours the same per-document masks from position ids.
    Compiled decoder layers run eagerly meanwhile: evaluation's shapes vary (compiled_layers). So do
    its row lengths, and cuDNN's attention builds an execution plan per shape: it is left out
    (`without_cudnn_attention`): with it, the first step holding the pass for the replay teacher's
    states (~55 rows of new lengths) took 58.7 s on an H200; without it the pass took 6 s."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    current = getattr(base.config, "_attn_implementation", None)
    with eager_layers(model), without_cudnn_attention():
        if current != "flex_attention" or not hasattr(base, "set_attn_implementation"):
            yield
            return
        base.set_attn_implementation("sdpa")
        try:
            yield
        finally:
            base.set_attn_implementation(current)


def without_cudnn_attention() -> Any:
    """sdpa without cuDNN's backend where shapes vary (evaluation, the teacher's states, generation):
    cuDNN attention builds an execution plan per input shape, which cost a first evaluation on an H200
    ~21 s (bench/gen_profile.py); flash / memory-efficient attention need no per-shape plan."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])
