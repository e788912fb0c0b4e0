"""The synchronous dry run: what a training job would do, computed in the server in well under 2 s.

`start_fine_tuning(dry_run=true)` used to queue a job (poll it; ~45 s when the GGUF base had to be
converted first) and answer `"params": null`. It now answers at once, without torch or transformers:
the resolved settings and their sources (graphtune.tools.training.provenance), the dataset's token
counts (graphtune.tools.training.token_lengths, cached), the packing plan the worker would make
(engine.make_plan on the same lengths), the device, whether a one-time GGUF conversion comes first
and how long it takes, and time and memory as ranges (graphtune.tools.training.calibration).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from graphtune.tools.errors import TrainingConfigError
from graphtune.tools.training import engine
from graphtune.tools.training.base_models import (
    gguf_cache_dir,
    gguf_cache_root,
    is_converted,
    locate_base_model,
    read_gguf_metadata,
)
from graphtune.tools.training.calibration import time_and_memory
from graphtune.tools.training.config import LoraJobConfig
from graphtune.tools.training.data_files import DatasetFiles, read_conversations
from graphtune.tools.training.estimate import estimate, local_config, shape_from_config, shape_from_gguf
from graphtune.tools.training.preflight import cheap_device, nvidia_gpu_count
from graphtune.tools.training.provenance import resolved_settings
from graphtune.tools.training.token_lengths import Lengths, dataset_lengths, light_tokenizer_files

__all__ = ["plan_training"]

CHARS_PER_TOKEN = 3.3  # SmolLM2's tokenizer on a knowledge dataset (json facts): 0.305 tokens per character
TEMPLATE_TOKENS = 30  # plus its chat template's own tokens (default system prompt, role markers)
CONVERSION_S_PER_MB = 0.13  # measured on 2 busy CPU cores (bench/gguf_conversion.py): SmolLM2-135M's 98 MB
# Q4_1 GGUF in 15.8-17.0 s, Gemma 3 270M's 253 MB in 38 s (40-43 s and 108 s before gguf_reads)
CONVERSION_FIXED_S = 5.0  # importing transformers and gguf


class _Sized:
    """An example stand-in for engine.make_plan, which only reads each example's length."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def _conversion(ref: Any, settings: Any) -> dict[str, Any]:
    """Whether the GGUF base is converted once before the first job, and how long that takes
    (the rate of earlier conversions here when there are any, else the measured constant)."""
    if ref.gguf is None:
        return {"needed": False}
    if is_converted(ref.gguf, settings):
        return {"needed": False, "folder": str(gguf_cache_dir(ref.gguf, settings))}
    mb = ref.gguf.size / 1e6
    rates = _past_conversion_rates(gguf_cache_root(settings))
    per_mb = sorted(rates)[len(rates) // 2] if rates else CONVERSION_S_PER_MB
    expected = CONVERSION_FIXED_S + per_mb * mb
    return {"needed": True, "seconds": {"low": round(expected * 0.7, 1), "expected": round(expected, 1),
                                        "high": round(expected * 1.5, 1)},
            "basis": f"{len(rates)} earlier conversion(s) here" if rates else "measured on 2 CPU cores",
            "note": "once per GGUF file: the first job converts it (dequantized to bf16) and caches the folder"}


def _past_conversion_rates(root: Path) -> list[float]:
    import json

    rates = []
    for record in root.glob("*/graphtune_source.json") if root.is_dir() else []:
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            if data.get("seconds") and data.get("size"):
                rates.append(max(0.0, data["seconds"] - CONVERSION_FIXED_S) / (data["size"] / 1e6))
        except (OSError, ValueError):
            continue
    return rates


def _shape_and_folder(ref: Any, settings: Any) -> tuple[dict[str, Any] | None, Path | None]:
    """The model's shape and, when its files are here already, the folder holding its tokenizer."""
    if ref.gguf is not None:
        if is_converted(ref.gguf, settings):
            folder = gguf_cache_dir(ref.gguf, settings)
            return shape_from_config(local_config(str(folder)) or {}), folder
        return shape_from_gguf(read_gguf_metadata(ref.gguf.header)), None
    config = local_config(ref.value)
    if config is None:
        return None, None
    folder = Path(ref.value) if ref.kind == "folder" else _hub_snapshot(ref.value)
    return shape_from_config(config), folder


def _hub_snapshot(repo_id: str) -> Path | None:
    from graphtune.tools.training.base_models import hub_cache_dir

    snapshots = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/tokenizer.json"), key=lambda p: p.stat().st_mtime, reverse=True) \
        if snapshots.is_dir() else []
    return found[0].parent if found else None


def _lengths(files: DatasetFiles, folder: Path | None, settings: Any) -> tuple[list[Lengths], str]:
    if folder is not None and light_tokenizer_files(folder) is not None:
        return dataset_lengths(files.train, folder, settings.db_path.parent / "token_lengths")
    out = []
    for messages in read_conversations(files.train):
        first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), len(messages))
        full = round(sum(len(m["content"]) for m in messages) / CHARS_PER_TOKEN) + TEMPLATE_TOKENS
        prompt = round(sum(len(m["content"]) for m in messages[:first]) / CHARS_PER_TOKEN) + TEMPLATE_TOKENS
        out.append(Lengths(full, prompt, full - prompt))
    return out, "estimated from characters (the tokenizer is not here until the base model is converted)"


def _tokens(lengths: list[Lengths], max_len: int) -> dict[str, Any]:
    kept = [t for t in (x.truncated(max_len) for x in lengths) if t is not None]
    return {"kept": [n for n, _ in kept], "train_examples": len(kept),
            "train_tokens_per_epoch": sum(n for n, _ in kept), "answer_tokens_per_epoch": sum(a for _, a in kept),
            "truncated_examples": sum(1 for x in lengths if x.full > max_len),
            "dropped_examples": len(lengths) - len(kept), "max_example_tokens": max((n for n, _ in kept), default=0)}


def _derived(cfg: LoraJobConfig, plan: Any, device: str, params: int | None, world: int, strategy: str,
             files: DatasetFiles) -> dict[str, tuple[Any, str]]:
    """The settings the job fixes when it runs (name -> (value, how)), as the worker would fix them."""
    budget_how = f"default for {device}" + (f" and a {params / 1e6:.0f}M-parameter model" if params and device == "cuda"
                                             else "")
    derived = {"tokens_per_batch": (plan.tokens_per_batch, budget_how),
               # packed: no cap of its own (the engine's internal PACKED_EXAMPLE_CAP is no value a caller may pass)
               "batch_size": ((None, "no cap: as many examples as fit tokens_per_batch") if cfg.packing
                              else (plan.batch_size, "8 without packing")),
               "eval_steps": (max(1, plan.steps // cfg.num_epochs), "once per epoch"),
               "save_steps": (50, "every 50 steps, and at cancel"),
               "gpus": (world, f"every visible GPU on {device}" if device == "cuda" else f"one rank on {device}"),
               "strategy": (strategy, "one rank" if world == 1 else "DDP when the model fits one card, else FSDP"),
               "device": (device, "CUDA when an NVIDIA GPU is visible, else MPS on Apple silicon, else CPU")}
    if files.metadata.get("objective") != "knowledge":
        derived["max_probes"] = (0, "no probes: the dataset is not a knowledge dataset")
    return derived


def plan_training(settings: Any, cfg: LoraJobConfig, files: DatasetFiles, given: dict[str, Any],
                  store: Any = None) -> dict[str, Any]:
    """The dry run's reply (see the module docstring); `given` holds the caller's own arguments."""
    started = time.perf_counter()
    device = cheap_device(cfg.device)
    world = (max(1, nvidia_gpu_count()) if cfg.gpus == "auto" else int(cfg.gpus)) if device == "cuda" \
        else (1 if cfg.gpus == "auto" else int(cfg.gpus))
    ref = locate_base_model(cfg.base_model)
    shape, folder = _shape_and_folder(ref, settings)
    lengths, how = _lengths(files, folder, settings)
    tokens = _tokens(lengths, cfg.max_seq_length)
    if not tokens["kept"]:  # the worker refuses the same way (train_job._prepare_data)
        raise TrainingConfigError("no training example has answer tokens within `max_seq_length`.",
                                  field="max_seq_length", hint="Raise max_seq_length.")
    params = shape["params"] if shape else None
    plan = engine.make_plan([_Sized(n) for n in tokens.pop("kept")], cfg, device,
                            grad_accum=cfg.gradient_accumulation_steps * world, model_params=params)
    strategy = "single" if world == 1 else (cfg.strategy if cfg.strategy != "auto" else "ddp")
    derived = _derived(cfg, plan, device, params, world, strategy, files)
    warmup_steps = int(cfg.warmup) if cfg.warmup >= 1 else round(cfg.warmup * plan.steps)
    reply = {
        "dry_run": True, "device": device, "world_size": world, "strategy": strategy,
        "base_model": {"requested": cfg.base_model, "kind": ref.kind, "conversion": _conversion(ref, settings)},
        "dataset": {"name": files.name, "objective": files.metadata.get("objective") or "skills",
                    "eval_examples": len(read_conversations(files.eval)) if files.eval else 0},
        "settings": resolved_settings(cfg, given, derived),
        **tokens, "token_counts": how,
        "micro_batches": len(plan.batches), "optimizer_steps": plan.steps, "tokens_per_batch": plan.tokens_per_batch,
        "total_tokens": plan.tokens, "warmup_steps": warmup_steps,
        "model_parameters": params,
        "estimate": time_and_memory(cfg, device, shape, plan, store, world) if shape else
        {"note": "the model's shape is unknown until its files are here (a hub id not in the local cache)"},
    }
    reply["elapsed_seconds"] = round(time.perf_counter() - started, 3)
    return reply
