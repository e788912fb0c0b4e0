"""`LoraJobConfig`: what a training job runs — every setting resolved (preset, defaults) and why.

The settings users give are declared once, in graphtune.tools.requests.train.TrainRequest
(description, bounds, choices), and checked there before anything is queued (submit_training
and start_fine_tuning alike); this config adds the engine-only settings (packing, weight decay,
logging) with their ranges. A plain dataclass stored as JSON in the job
row: any job can be re-run, and the GPU benchmark builds one directly.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from graphtune.tools.errors import TrainingConfigError

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
PACKED_EXAMPLE_CAP = 4096  # short fact examples: hundreds fit one 8k-token micro-batch
DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass
class LoraJobConfig:
    # --- model --------------------------------------------------------------------
    base_model: str = field(metadata=_help("Hub id (org/name) or local folder with config.json."))
    dataset_name: str = field(metadata=_help("graphtune dataset name, or a path to a chat/alpaca JSONL file."))
    method: str = field(default="lora", metadata=_help("lora, or qlora (4-bit NF4; CUDA only).",
                                                        choices=["lora", "qlora"]))
    device: str = field(default="auto", metadata=_help("auto | cuda | mps | cpu.",
                                                       choices=["auto", "cuda", "mps", "cpu"]))
    output_name: str | None = field(default=None, metadata=_help("Folder name under models/; default from job id."))
    gpus: int | str = field(default="auto", metadata=_help(
        "Ranks to train on: 'auto' (every visible GPU; 1 on CPU/MPS) or a count. On CPU a count > 1 starts that many "
        "gloo processes (the same launcher path; for testing it without GPUs)."))
    strategy: str = field(default="auto", metadata=_help(
        "Multi-GPU strategy: auto (DDP when the model fits one card, else FSDP) | ddp | fsdp.",
        choices=["auto", "ddp", "fsdp"]))
    # --- LoRA ---------------------------------------------------------------------
    lora_rank: int = field(default=16, metadata=_help("LoRA rank r (4..64)."))
    lora_alpha: float = field(default=32.0, metadata=_help("LoRA alpha (1..128)."))
    lora_dropout: float = field(default=0.0, metadata=_help("Dropout on the LoRA input (0..0.5); 0 is fastest."))
    target_modules: list[str] | str = field(default_factory=lambda: list(DEFAULT_TARGETS),
                                            metadata=_help("Module names to adapt, or 'all-linear'."))
    # --- schedule -----------------------------------------------------------------
    learning_rate: float = field(default=2e-4, metadata=_help("Peak learning rate (1e-6..1e-2)."))
    batch_size: int | None = field(default=None, metadata=_help(
        "Max examples per micro-batch (1..1024); default: as many as fit tokens_per_batch when packing, 8 without "
        "packing."))
    gradient_accumulation_steps: int = field(default=1, metadata=_help("Micro-batches per optimizer step (1..64)."))
    num_epochs: int = field(default=3, metadata=_help("Passes over the training split (1..10)."))
    max_steps: int | None = field(default=None, metadata=_help("Stop after this many optimizer steps (overrides "
                                                               "epochs when smaller)."))
    max_seq_length: int = field(default=2048, metadata=_help("Examples longer than this are truncated (32..32768)."))
    tokens_per_batch: int | None = field(default=None, metadata=_help(
        "Token budget of a packed micro-batch; default 8192 on CUDA, 4096 on CPU/MPS (never above "
        "batch_size*max_seq_length)."))
    warmup: float = field(default=0.03, metadata=_help("Warm-up: a ratio < 1 of all steps, or a step count."))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay.", range=(0.0, 1.0)))
    logging_steps: int = field(default=1, metadata=_help("Metrics event every N steps.", range=(1, 100000)))
    eval_steps: int | None = field(default=None, metadata=_help("Eval loss every N steps (default: once per epoch)."))
    save_steps: int | None = field(default=None, metadata=_help("Checkpoint every N steps (default: every 50 steps "
                                                                "and at cancel)."))
    seed: int = field(default=42, metadata=_help("Seed for data order, LoRA init and dropout."))
    gradient_checkpointing: str = field(default="auto", metadata=_help(
        "auto (only when memory needs it) | on | off.", choices=["auto", "on", "off"]))
    max_memory_gib: float | None = field(default=None, metadata=_help(
        "GPU memory ceiling: auto checkpointing covers just enough layers to stay under it (default 90% of the GPU)."))
    packing: bool = field(default=True, metadata=_help("Padding-free packing with per-document attention."))
    init_adapter: str | None = field(default=None, metadata=_help(
        "Continue training from a finished graphtune model (name) on this dataset; not the same as resume."))
    dry_run: bool = field(default=False, metadata=_help("Validate, tokenize and estimate; do not train."))
    preset: str = field(default="default", metadata=_help(
        "Defaults for settings left out: default, or knowledge (all-linear, r64, alpha 128, lr 1e-3, 10 epochs); resolved "
        "from `auto` before the job is queued.", choices=["default", "knowledge"]))
    evaluate_probes: bool = field(default=True, metadata=_help(
        "When the dataset has probes.jsonl: answer them closed-book with the base and the tuned model at the end."))
    max_probes: int = field(default=600, metadata=_help("Probes evaluated at the end of training (stratified by "
                                                        "fact type)."))
    general_replay: float = field(default=0.0, metadata=_help(
        "Fraction of training rows that replay the base model's own answers to general prompts (0..0.5), so the "
        "tuned model stays a good assistant (bounded by TrainRequest)."))
    general_replay_kl: float = field(default=0.0, metadata=_help(
        "Weight of a KL(base || tuned) term on the answer tokens of general-replay rows: keeps the tuned model's "
        "whole next-token distribution there at the base model's (0 = off; bounded by TrainRequest)."))

    def __post_init__(self) -> None:
        for f in fields(self):  # engine-only settings; what users set is bounded by TrainRequest
            bounds = f.metadata.get("range")
            value = getattr(self, f.name)
            low, high = bounds or (None, None)
            if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
                raise TrainingConfigError(f"`{f.name}`={value!r} is outside {low}..{high}.", field=f.name,
                                          hint=f.metadata["help"])
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise TrainingConfigError(f"`{f.name}`={value!r} must be one of {choices}.", field=f.name)
        if self.gpus != "auto" and (isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or not 1 <= self.gpus <= 64):
            raise TrainingConfigError(f"`gpus`={self.gpus!r} must be 'auto' or a count 1..64.", field="gpus",
                                      hint="e.g. gpus=2, or gpus='auto' for every visible GPU.")
        if isinstance(self.target_modules, str) and self.target_modules != "all-linear":
            self.target_modules = [m.strip() for m in self.target_modules.split(",") if m.strip()]
        if not self.target_modules:
            raise TrainingConfigError("`target_modules` is empty.", field="target_modules",
                                      hint="Use the default (q/k/v/o projections) or 'all-linear'.")
        if self.output_name is not None and (not NAME.fullmatch(self.output_name) or ".." in self.output_name):
            raise TrainingConfigError(f"`output_name`={self.output_name!r} must be a slug (a-z, 0-9, '-', '_', '.').",
                                      field="output_name", hint="e.g. output_name='mylib-lora-r16'.")

    @property
    def examples_per_batch(self) -> int:
        """The cap on examples per micro-batch: packing fills the token budget unless batch_size is set."""
        return self.batch_size or (PACKED_EXAMPLE_CAP if self.packing else 8)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LoraJobConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainingConfigError(f"unknown training settings: {unknown}.", field=unknown[0])
        return cls(**data)


def resolve_device(requested: str, method: str) -> str:
    """The device to train on; refuses QLoRA off CUDA (bitsandbytes computes wrong LoRA grads on CPU)."""
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    device = requested
    if requested == "auto":
        device = "cuda" if cuda else "mps" if mps else "cpu"
    if device == "cuda" and not cuda:
        raise TrainingConfigError("`device`='cuda' but no CUDA GPU is visible.", field="device",
                                  hint="Use device='auto' or 'cpu'.")
    if device == "mps" and not mps:
        raise TrainingConfigError("`device`='mps' but Apple MPS is not available.", field="device",
                                  hint="Use device='auto' or 'cpu'.")
    if method == "qlora" and device != "cuda":
        raise TrainingConfigError(f"`method`='qlora' needs a CUDA GPU; this job would run on {device}.",
                                  field="method", hint="Use method='lora' here (4-bit QLoRA runs only on CUDA).")
    return device
