"""Load the base model and tokenizer, attach LoRA, and switch on the fast path where it exists.

Fast path on CUDA (the default there, not a benchmark mode): bf16 weights, flex_attention
(per-document block masks for packed rows), Liger kernels (fused linear cross-entropy,
RMSNorm, RoPE, SwiGLU) when liger-kernel + triton are installed, gradient checkpointing only
when the memory estimate says it is needed, and (default, `compile_layers`) each decoder layer
compiled for single-GPU LoRA (compiled_layers). CPU/MPS: sdpa, fp32, no Liger; same results.
"""

from __future__ import annotations

from typing import Any

from graphtune.tools.errors import TrainingConfigError
from graphtune.tools.training.base_models import check_base_model  # noqa: F401 - re-exported (older imports)
from graphtune.tools.training.config import LoraJobConfig


def load_tokenizer(base_model: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def liger_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("liger_kernel") is not None and importlib.util.find_spec("triton") is not None


def load_model(cfg: LoraJobConfig, device: str, base: str, *, keep_on_cpu: bool = False,
               init_adapter: str | None = None, liger_layers: bool = True) -> tuple[Any, dict[str, Any]]:
    """The PEFT model on `device` (on the CPU when FSDP will shard it onto the GPUs) and a dict
    describing what was switched on (recorded in metadata). `init_adapter`: a finished adapter
    to continue (trainable) instead of a fresh LoRA. `liger_layers=False`: the layers will be compiled
    (graphtune.tools.training.compiled_layers), so Liger keeps only its fused cross-entropy.

    QLoRA quantizes on the GPU, so each rank loads the 4-bit model onto its own card; under FSDP
    (keep_on_cpu) the packed 4-bit weights are stored as bf16 (`bnb_4bit_quant_storage`, the
    FSDP-QLoRA recipe of bitsandbytes/PEFT): FSDP shards only floating tensors and needs one dtype
    per shard group, and bitsandbytes restores each layer's quant state after FSDP's all-gather."""
    import torch
    from transformers import AutoModelForCausalLM

    cuda = device == "cuda"
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    attn = "flex_attention" if cuda else "sdpa"
    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": attn}
    if cfg.method == "qlora":
        kwargs["quantization_config"] = quantization_config(sharded=keep_on_cpu)
        kwargs["device_map"] = {"": torch.cuda.current_device()}  # this rank's GPU
    model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    if cfg.method != "qlora" and not keep_on_cpu:
        model.to(device)
    model = prepare_model(model, cfg, device, init_adapter=init_adapter, fused_kernels=not keep_on_cpu,
                          liger_layers=liger_layers)
    attn = ensure_attention_works(model, "cpu" if keep_on_cpu else device, model.config.vocab_size,
                                  shared_prefix=cfg.shared_prefix and cfg.packing)
    return model, {"dtype": str(dtype).replace("torch.", ""), "attention": attn}


def quantization_config(*, sharded: bool) -> Any:
    """QLoRA's 4-bit NF4 (double-quantized, bf16 compute). Sharded (FSDP): the packed weights are
    stored as bf16 so that FSDP can shard them beside the bf16 layers (uint8 storage cannot be)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16,
                              **({"bnb_4bit_quant_storage": torch.bfloat16} if sharded else {}))


def prepare_model(model: Any, cfg: LoraJobConfig, device: str, *, init_adapter: str | None = None,
                  fused_kernels: bool = True, liger_layers: bool = True) -> Any:
    """Fast kernels, LoRA (fresh or from a finished adapter), checkpointing; used by jobs and the benchmark.
    fused_kernels=False under FSDP: Liger's fused cross-entropy reads lm_head's weight directly,
    which FSDP2 keeps sharded (a DTensor) outside the layer's own forward. liger_layers=False keeps
    only that fused cross-entropy (for compiled layers, where inductor fuses norms, RoPE and SwiGLU)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    model.config.use_cache = False
    fast = {"liger": False}
    if device == "cuda" and fused_kernels and liger_available():
        from liger_kernel.transformers import _apply_liger_kernel_to_instance

        inside_layers = {} if liger_layers else {"rope": False, "rms_norm": False, "swiglu": False, "geglu": False}
        _apply_liger_kernel_to_instance(model=model, **inside_layers)
        fast["liger"] = True
    # QLoRA: no prepare_model_for_kbit_training. It upcasts embeddings, lm_head and norms to fp32
    # (+4 GiB on an 8B model); Liger's RMSNorm already computes in fp32 and get_peft_model freezes the base.
    if init_adapter:
        model = PeftModel.from_pretrained(model, init_adapter, is_trainable=True)
    else:
        from transformers import set_seed

        set_seed(cfg.seed)  # LoRA A matrices are random: same seed, same run (and resume can replay it)
        targets = cfg.target_modules
        lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=targets, task_type="CAUSAL_LM")
        try:
            model = get_peft_model(model, lora)
        except ValueError as exc:
            raise TrainingConfigError(f"`target_modules`={targets!r} do not match this model: {exc}",
                                      field="target_modules", hint="Use 'all-linear' or the model's projection "
                                      "names (e.g. q_proj,v_proj).") from exc
    model.graphtune_fast_path = fast  # type: ignore[attr-defined]
    return model


def ensure_attention_works(model: Any, device: str, vocab_size: int, shared_prefix: bool = False) -> str:
    """On CUDA, prove flex_attention compiles for this model with one packed forward+backward;
    if inductor cannot build its kernels (seen for small head dims), fall back to sdpa, which
    honours the same per-document masks. `shared_prefix`: the probe row is masked the way shared-prefix
    rows are (their own mask function, compiled into their own kernels). Returns the attention
    implementation in use."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    current = getattr(base.config, "_attn_implementation", "sdpa")
    if device != "cuda" or current != "flex_attention":
        return current
    import torch

    from graphtune.tools.training import attention_check

    environment = attention_check.cuda_environment(next(model.parameters()).dtype)
    if shared_prefix:
        environment["mask"] = "shared_prefix"
    key, record = attention_check.attention_key(base.config, environment), attention_check.record_file()
    if attention_check.passed_before(key, record):  # same kernels compiled and ran in an earlier job
        return current
    ids = torch.randint(0, max(2, vocab_size), (1, 256), device="cuda")
    try:
        model.train()
        with torch._dynamo.config.patch(suppress_errors=False):  # an OOM retry reloads after layers compiled
            out = model(input_ids=ids, labels=ids, use_cache=False, **_probe_row(model, shared_prefix))
            out.loss.backward()
        attention_check.record_pass(key, record, environment)
        # forget what the probe compiled: its block-mask builder, seen again at the training rows' length,
        # would recompile with dynamic sizes, and the compiled layers would then take other inputs than in
        # a job that skipped the check; their cache keys differed, so the job after the first compiled the
        # layers again (~34 s on an H200; bench/compile_keys.py, thirteenth session)
        torch._dynamo.reset()
        return current
    except Exception as exc:  # noqa: BLE001 - any compile failure means: use the portable kernel
        base.set_attn_implementation("sdpa")
        torch._dynamo.reset()
        return f"sdpa (flex_attention unavailable: {type(exc).__name__})"
    finally:
        model.zero_grad(set_to_none=True)


def _probe_row(model: Any, shared_prefix: bool) -> dict[str, Any]:
    """Position ids (and a shared-prefix row's mask) of the attention check's 256-token row: two
    packed documents on the 128-token block grid, like the training rows (padded to a block multiple);
    shared: a 32-token prefix, a document that sees it and one that does not."""
    import torch

    if not shared_prefix:
        return {"position_ids": torch.cat([torch.arange(160), torch.arange(96)]).unsqueeze(0).to("cuda")}
    from graphtune.tools.training.shared_prefix import PREFIX_DOCUMENT, attention_mask

    documents = torch.tensor([[PREFIX_DOCUMENT] * 32 + [1] * 128 + [-2] * 96], device="cuda")
    positions = torch.cat([torch.arange(160), torch.arange(96)]).unsqueeze(0).to("cuda")
    return {"position_ids": positions, "attention_mask": attention_mask(model, documents)}


def enable_checkpointing(model: Any) -> None:
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()


def count_params(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
