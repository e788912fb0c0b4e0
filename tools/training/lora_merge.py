"""The LoRA adapter folded into the base weights for the duration of a generation call.

Why: unmerged, every adapted linear runs ~4 more kernels per decode step (A, B, scale, add;
210 adapted linears in SmolLM2-135M with `all-linear`), and a small model's decoding is bound by
kernel launches, not by arithmetic: measured ~100 ms per step on an H200 for the tuned side of a
knowledge job. Merged, the tuned model runs exactly the base model's kernels.

How, and why not peft's `merge_adapter()`: peft adds the delta into the base weight *in place* and
`unmerge_adapter()` subtracts it again, both in bf16 on CUDA, so after one merge/unmerge round the
base weights are no longer bit-identical and later base-side answers (`disable_adapter`) can
change. Here each adapted layer's base weight Parameter is *swapped* for a merged copy
(W + scale * B @ A computed in fp32, rounded once to the weight's dtype) and the original
Parameter object is put back afterwards: the base weights are never written, so base answers
before and after are identical, at the cost of one extra copy of the adapted weights while
merged (~0.2 GiB for a 135M model; the merge is skipped when that copy does not fit).

Falls back to the unmerged model (yields False) when merging cannot be exact or cheap: no LoRA
layer, a quantized (4-bit/8-bit) base, LoRA variants (DoRA ...), `lora_bias`, adapters disabled or
already merged, a model in training mode (dropout), a sharded (DTensor) weight, or too little
free GPU memory for the merged copy.

    with merged_lora(model) as merged:   # merged: bool
        model.generate(...)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FREE_MEMORY_SHARE = 0.5  # the merged copy may take at most this share of the GPU memory free now


def mergeable_layers(model: Any) -> list[Any] | None:
    """The LoRA Linear layers to merge, or None when the model cannot be merged exactly (see module doc)."""
    import torch

    try:
        from peft.tuners.lora.layer import Linear as LoraLinear
        from peft.tuners.lora.layer import LoraLayer
    except ImportError:
        return None
    if getattr(model, "training", False):
        return None
    layers = []
    for module in model.modules():
        if not isinstance(module, LoraLayer):
            continue
        if type(module) is not LoraLinear or module.disable_adapters or module.merged:
            return None
        active = [a for a in module.active_adapters if a in module.lora_A]
        if not active:
            continue
        if any(a in getattr(module, "lora_variant", {}) or module.use_dora.get(a, False)
               or module.lora_bias.get(a, False) for a in active):
            return None
        weight = module.get_base_layer().weight
        if type(weight) is not torch.nn.Parameter or not weight.dtype.is_floating_point \
                or weight.device.type == "meta":
            return None  # bitsandbytes Params4bit/Int8Params, DTensor shards, offloaded weights ...
        layers.append(module)
    return layers or None


def _fits(layers: list[Any]) -> bool:
    import torch

    weights = [m.get_base_layer().weight for m in layers]
    if weights[0].device.type != "cuda":
        return True
    need = sum(w.numel() * w.element_size() for w in weights) + max(w.numel() * 4 * 2 for w in weights)
    free, _ = torch.cuda.mem_get_info(weights[0].device)
    free += torch.cuda.memory_reserved(weights[0].device) - torch.cuda.memory_allocated(weights[0].device)
    return need <= FREE_MEMORY_SHARE * free


def _merged_weight(module: Any) -> Any:
    import torch

    weight = module.get_base_layer().weight
    total = weight.detach().to(torch.float32)
    for adapter in module.active_adapters:
        if adapter not in module.lora_A:
            continue
        a = module.lora_A[adapter].weight.detach().to(device=weight.device, dtype=torch.float32)
        b = module.lora_B[adapter].weight.detach().to(device=weight.device, dtype=torch.float32)
        delta = b @ a
        total = total + (delta.T if module.fan_in_fan_out else delta) * module.scaling[adapter]
    return torch.nn.Parameter(total.to(weight.dtype), requires_grad=False)


@contextmanager
def merged_lora(model: Any) -> Iterator[bool]:
    """Merge the active LoRA adapters for the block (yields True), or leave the model as it is
    (yields False). The original base weight Parameters are restored on exit, untouched."""
    import torch

    layers = mergeable_layers(model)
    if not layers or not _fits(layers):
        yield False
        return
    swapped: list[tuple[Any, Any, Any]] = []
    try:
        with torch.no_grad():
            for module in layers:
                base = module.get_base_layer()
                original = base.weight
                merged = _merged_weight(module)
                base.weight = merged
                module.merged_adapters = [a for a in module.active_adapters if a in module.lora_A]
                swapped.append((module, base, original))
        yield True
    finally:
        for module, base, original in reversed(swapped):
            base.weight = original
            module.merged_adapters = []
