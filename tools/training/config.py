"""`LoraJobConfig`: every setting of a training job, declared once, and what a job runs.

Each field carries its description, default (what the job runs when nothing else fills it), bounds
and who may set it (graphtune.tools.declare.setting); the validators carry the cross-field checks.
`TrainRequest` (graphtune.tools.requests.train), and with it the MCP tool `start_fine_tuning`, the
`graphtune train` flags and the docs table, is derived from these fields, so adding a training
option is one field here plus the code that reads it. `request_default=None` marks the settings a
request leaves open: the preset fills them (graphtune.tools.training.presets), else this default.

`from_dict` is the one way a config is built from values (request values after the preset, a
stored job's config, a base model's recipe with changes); any bad value becomes a coded
TrainingConfigError naming the field. The config is stored as JSON in the job row, so any job can
be re-run; the GPU benchmark builds one directly.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from graphtune.tools.dataset.names import check_new_model_name
from graphtune.tools.declare import setting
from graphtune.tools.errors import TrainingConfigError
from graphtune.tools.training.presets import PRESETS
from graphtune.tools.validation import coded_validation_error
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, field_validator, model_validator

__all__ = ["DEFAULT_TARGETS", "HUB_ID", "PACKED_EXAMPLE_CAP", "Device", "LoraJobConfig", "resolve_device"]

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
PACKED_EXAMPLE_CAP = 4096  # short fact examples: hundreds fit one 8k-token micro-batch
DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
Device = Literal["auto", "cuda", "mps", "cpu"]


def _all_linear(value: Any) -> Any:
    """The CLI's `--target-modules all-linear` arrives as a one-item list."""
    return "all-linear" if value == ["all-linear"] else value


class LoraJobConfig(BaseModel):
    """A training job's settings, resolved; fields in the order the tool and the CLI list them."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), defer_build=True)

    # --- what to train ---------------------------------------------------------------------------
    dataset_name: str = setting(description="Dataset name (list_datasets) or path of a chat/alpaca JSONL file.")
    base_model: str = setting(description="Model to fine-tune: built-in name, hub id, .gguf or folder "
                              "(list_base_models).")
    method: Literal["lora", "qlora"] = setting("lora", description="lora (any device) or qlora (4-bit weights, "
                                               "CUDA only); default lora.")
    preset: Literal["auto", "default", "knowledge"] = setting("default", request_default="auto", description=(
        "Defaults for settings left out; auto picks knowledge for knowledge datasets, else default."))
    # --- LoRA ------------------------------------------------------------------------------------
    lora_rank: int = setting(16, request_default=None, ge=4, le=64, description="LoRA adapter rank (capacity); "
                             "default 16, knowledge preset 64.")
    lora_alpha: float = setting(32.0, request_default=None, ge=1, le=128, description="LoRA scaling factor alpha; "
                                "default 32, knowledge preset 128.")
    lora_dropout: float = setting(0.0, offer="cli", ge=0, le=0.5, description="Dropout on the LoRA input, 0-0.5; "
                                  "default 0 (fastest).")
    target_modules: Annotated[list[str] | Literal["all-linear"], BeforeValidator(_all_linear)] = setting(
        default_factory=lambda: list(DEFAULT_TARGETS), request_default=None, description=(
            "Layers to adapt: module names or all-linear; default q/k/v/o_proj, knowledge preset all-linear."))
    # --- schedule --------------------------------------------------------------------------------
    learning_rate: float = setting(2e-4, request_default=None, ge=1e-6, le=1e-2, description="Peak learning rate; "
                                   f"default 2e-4, knowledge preset {PRESETS['knowledge']['learning_rate']:g}.")
    batch_size: int | None = setting(None, ge=1, le=1024, description="Most examples per micro-batch; default as "
                                     "many as fit tokens_per_batch.")
    gradient_accumulation_steps: int = setting(1, offer="cli", ge=1, le=64, description="Micro-batches per "
                                               "optimizer step; default 1.")
    num_epochs: int = setting(3, request_default=None, ge=1, le=10, description="Passes over the training split; "
                              f"default 3, knowledge preset {PRESETS['knowledge']['num_epochs']}.")
    max_steps: int | None = setting(None, ge=1, le=10_000_000, description="Stop after this many optimizer steps; "
                                    "default no cap (epochs decide).")
    max_seq_length: int = setting(2048, request_default=None, ge=32, le=32768, description="Tokens kept per example "
                                  "(longer ones are truncated); default 2048, knowledge preset 512.")
    warmup: float = setting(0.03, request_default=None, offer="cli", ge=0, le=100_000, description=(
        "Learning-rate warm-up: a ratio of all steps below 1, else a step count; default 0.03."))
    tokens_per_batch: int | None = setting(None, offer="cli", ge=64, le=262144, description=(
        "Token budget of a packed micro-batch; default 4096 on CPU/MPS, 8192-49152 on CUDA by model size."))
    max_memory_gib: float | None = setting(None, offer="cli", ge=1, le=4096, description="GPU memory ceiling in GiB "
                                           "for auto checkpointing; default 90% of the GPU.")
    compile_layers: bool = setting(True, offer="cli", description=(
        "Compile each decoder layer with torch.compile for faster steps (one GPU, LoRA, packed rows, no "
        "activation checkpointing; ~10-25 s of compiling at the start); default true."))
    shared_prefix: bool = setting(False, offer="cli", description=(
        "Compute the chat template's default opening (e.g. its default system prompt) once per packed row "
        "instead of once per example. Steps, losses and gradients stay the same and rows are shorter, but on "
        "an H200 its steps were not faster, so it is off by default. Packed rows only."),
        cli_help="Needs flex_attention (CUDA) or sdpa (CPU/MPS), which take the row's document mask; examples "
        "with their own system prompt keep their full tokens.")
    gradient_checkpointing: Literal["auto", "on", "off"] = setting("auto", offer="cli", description=(
        "Recompute activations to save memory: auto (only when needed), on or off; default auto."))
    eval_steps: int | None = setting(None, offer="cli", ge=1, le=1_000_000, description="Eval loss every this many "
                                     "optimizer steps; default once per epoch.")
    save_steps: int | None = setting(None, offer="cli", ge=1, le=1_000_000, description="Checkpoint every this many "
                                     "optimizer steps; default 50 (and at cancel).")
    seed: int = setting(42, offer="cli", description="Random seed for data order and LoRA initialization; "
                        "default 42.")
    # --- where -----------------------------------------------------------------------------------
    device: Device = setting("auto", description="Device to train on; default auto (CUDA, else MPS, else CPU).")
    gpus: int | Literal["auto"] = setting("auto", description="GPUs to train on, one rank each, or auto; default "
                                          "auto (every visible GPU).", cli_help="torchrun starts one rank per GPU; "
                                          "on CPU a count starts that many gloo processes.")
    strategy: Literal["auto", "ddp", "fsdp"] = setting("auto", offer="cli", description=(
        "Multi-GPU strategy: ddp, fsdp, or auto (DDP when the model fits one GPU); default auto."))
    # --- outputs and evaluation ------------------------------------------------------------------
    output_name: str | None = setting(None, description="Name of the model folder to create; default "
                                      "<dataset>-<method>-<job id>.")
    init_adapter: str | None = setting(None, description="Continue training this finished model (name or alias) "
                                       "on the dataset; default none.", cli_help="Not resume: for that use "
                                       "resume_fine_tuning.")
    dry_run: bool = setting(False, description="Answer at once with the resolved settings, steps and estimates; "
                            "queue nothing.")
    evaluate_probes: bool = setting(True, description="Answer the dataset's probes closed-book after training; "
                                    "default true.")
    max_probes: int = setting(600, request_default=None, ge=1, le=100000, description="Most probes answered after "
                              "training, stratified by fact type; default 600.")
    general_replay: float = setting(0.0, request_default=None, ge=0.0, le=0.5, description=(
        "Share of training rows that replay the base model's own answers to everyday prompts, 0-0.5, so the "
        "tuned model stays a good assistant; default 0, knowledge preset 0.2."))
    general_replay_kl: float = setting(0.0, request_default=None, offer="cli", ge=0.0, le=10.0, description=(
        "Weight of a KL(base || tuned) term on the replayed answers' tokens, which keeps the tuned model's "
        "next-token distribution there at the base model's; 0 turns it off; default 0, knowledge preset 1."))
    # --- engine only (stored jobs and benchmarks set them) ---------------------------------------
    weight_decay: float = setting(0.0, offer="engine", ge=0.0, le=1.0, description="AdamW weight decay.")
    logging_steps: int | None = setting(None, offer="engine", ge=1, le=100000, description=(
        "Metrics event every N steps; default every step, on CUDA about 100 events per run (engine.logging_every)."))
    packing: bool = setting(True, offer="engine", description="Padding-free packing with per-document attention.")

    @field_validator("target_modules", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "all-linear":  # "q_proj,v_proj" (benchmark KEY=VALUE overrides)
            return [m.strip() for m in value.split(",") if m.strip()]
        return value

    @field_validator("target_modules")
    @classmethod
    def _not_empty(cls, value: list[str] | str) -> list[str] | str:
        if not value:
            raise TrainingConfigError("`target_modules` is empty.", field="target_modules",
                                      hint="Use the default (q/k/v/o projections) or 'all-linear'.")
        return value

    @model_validator(mode="after")
    def _resolved(self) -> "LoraJobConfig":
        """What a job can run: a resolved preset, a GPU count in range, a slug for the model folder."""
        if self.preset == "auto":
            raise TrainingConfigError("`preset`='auto' is resolved from the dataset before a job is configured.",
                                      field="preset", hint="Pass preset='default' or 'knowledge'.")
        if self.gpus != "auto" and (isinstance(self.gpus, bool) or not 1 <= self.gpus <= 64):
            raise TrainingConfigError(f"`gpus`={self.gpus!r} must be 'auto' or a count 1..64.", field="gpus",
                                      hint="e.g. gpus=2, or gpus='auto' for every visible GPU.")
        check_kl_strategy(self, self.strategy)
        if self.output_name is not None:
            check_new_model_name(self.output_name, "output_name", TrainingConfigError,
                                 hint="e.g. output_name='mylib-lora-r16'.")
        return self

    @property
    def examples_per_batch(self) -> int:
        """The cap on examples per micro-batch: packing fills the token budget unless batch_size is set."""
        return self.batch_size or (PACKED_EXAMPLE_CAP if self.packing else 8)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def job_params(self) -> dict[str, Any]:
        """What a training job row stores (its params); `from_job` reads it back."""
        return {"config": self.to_dict()}

    @classmethod
    def from_job(cls, params: dict[str, Any]) -> "LoraJobConfig":
        return cls.from_dict(params["config"])

    def updated(self, **changes: Any) -> "LoraJobConfig":
        """A copy with `changes`, checked like any config (resume on another GPU count, a retrain's recipe)."""
        return type(self).from_dict({**self.to_dict(), **changes})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LoraJobConfig":
        """The one constructor from values: unknown names, bounds and cross-field checks are coded errors."""
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            raise TrainingConfigError(f"unknown training settings: {unknown}.", field=unknown[0])
        try:
            return cls(**data)
        except ValidationError as exc:
            coded = coded_validation_error(exc, cls.model_json_schema())
            raise TrainingConfigError(coded.message, field=coded.field, hint=coded.hint) from exc


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


def check_kl_strategy(cfg: LoraJobConfig, strategy: str) -> None:
    """Refuse the KL-to-base term under FSDP (asked for, or chosen by `auto` because the model does not fit
    one GPU): the term reads the base model's decoder and the output layer outside the model's own
    forward, where FSDP keeps them sharded, and a CPU reproduction with fully_shard failed at the first step."""
    if strategy == "fsdp" and cfg.general_replay_kl > 0:
        raise TrainingConfigError(
            f"`general_replay_kl`={cfg.general_replay_kl} (the KL-to-base term; the knowledge preset sets 1.0) does "
            "not run under FSDP yet, which this job asks for or needs (`strategy`='fsdp': the model does not "
            "fit one GPU).", field="general_replay_kl",
            hint="From an MCP client: method='qlora' with gpus=1 (the 4-bit model fits one GPU, no FSDP needed), "
                 "or preset='default' (no replay, no KL term). From the CLI: also --general-replay-kl 0 (the replay "
                 "rows still train, without the KL term) or --strategy ddp on GPUs that each hold the model.")
