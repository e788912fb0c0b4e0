"""`TrainRequest`: every parameter of a training job (`start_fine_tuning`, `graphtune train`).

Settings left out (None) take the preset's value (graphtune.tools.training.presets) and then
`LoraJobConfig`'s default: the request is what a user may ask for, the config what the job runs.
tests/unit/requests/test_request_models.py checks that both agree on every bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from graphtune.tools.requests.base import JobRequest, param
from graphtune.tools.requests.no_effect import NoEffect, refuse_without_effect
from pydantic import field_validator

if TYPE_CHECKING:
    from graphtune.tools.services import ToolServices

__all__ = ["Device", "TrainRequest"]

Device = Literal["auto", "cuda", "mps", "cpu"]


class TrainRequest(JobRequest):
    """Fine-tune a causal LM with LoRA/QLoRA; preflight resolves the preset into a LoraJobConfig."""

    kind: ClassVar[str] = "train"
    positional: ClassVar[tuple[str, ...]] = ("dataset_name", "base_model")

    dataset_name: str = param(description="Dataset or JSONL path.",
                              cli_help="graphtune dataset name, or a path to a chat/alpaca JSONL file.")
    base_model: str = param(description="See list_base_models.",
                            cli_help="Built-in name, hub id (org/name), .gguf file or local model folder.")
    method: Literal["lora", "qlora"] = param("lora", description="qlora: CUDA only.")
    preset: Literal["auto", "default", "knowledge"] = param("auto", description="Defaults.", cli_help=(
        "Defaults for settings left out (auto: knowledge for knowledge datasets)."))
    lora_rank: int | None = param(None, ge=4, le=64, description="Default 16.", cli_help="Knowledge preset: 64.")
    lora_alpha: float | None = param(None, ge=1, le=128, description="Default 32.", cli_help="Knowledge preset: 128.")
    lora_dropout: float = param(0.0, ge=0, le=0.5, description="Dropout.")
    target_modules: list[str] | Literal["all-linear"] | None = param(None, description="Default q/k/v/o.",
                                                                     cli_help="Module names, or all-linear.")
    learning_rate: float | None = param(None, ge=1e-6, le=1e-2, description="Default 2e-4.",
                                        cli_help="Knowledge preset: 1e-3.")
    batch_size: int | None = param(None, ge=1, le=1024, description="Max per micro-batch.",
                                   cli_help="Default: as many as fit tokens_per_batch.")
    gradient_accumulation_steps: int = param(1, ge=1, le=64, description="Micro-batches/step.")
    num_epochs: int | None = param(None, ge=1, le=10, description="Default 3.", cli_help="Knowledge preset: 10.")
    max_steps: int | None = param(None, ge=1, le=10_000_000, description="Step cap.")
    max_seq_length: int | None = param(None, ge=32, le=32768, description="Default 2048.",
                                       cli_help="Knowledge preset: 512.")
    warmup: float | None = param(None, ge=0, le=100_000, description="Ratio or steps.")
    tokens_per_batch: int | None = param(None, ge=64, le=262144, description="Micro-batch tokens.", cli_help=(
        "Default 8192 on CUDA, 4096 on CPU/MPS."))
    max_memory_gib: float | None = param(None, ge=1, le=4096, description="GPU memory cap.")
    gradient_checkpointing: Literal["auto", "on", "off"] = param("auto", description="Memory saving.")
    eval_steps: int | None = param(None, ge=1, le=1_000_000, description="Default: per epoch.")
    save_steps: int | None = param(None, ge=1, le=1_000_000, description="Default 50.")
    seed: int = param(42, description="Seed.")
    device: Device = param("auto", description="Device.")
    gpus: int | Literal["auto"] = param("auto", description="GPU count.", cli_help=(
        "'auto' (every visible GPU; 1 on CPU/MPS) or a count; torchrun starts one rank per GPU."))
    strategy: Literal["auto", "ddp", "fsdp"] = param("auto", description="Multi-GPU.", cli_help=(
        "DDP when the model fits one card, else FSDP (auto)."))
    output_name: str | None = param(None, description="Model name.",
                                    cli_help="Folder name under models/; default from the job id.")
    init_adapter: str | None = param(None, description="Continue this model.",
                                     cli_help="Continue training a finished model on this dataset (not resume).")
    dry_run: bool = param(False, description="Estimate only.",
                          cli_help="Validate, tokenize and estimate steps, memory and time; do not train.")
    evaluate_probes: bool = param(True, description="Probe at end.")
    max_probes: int | None = param(None, ge=1, le=100000, description="Default 600.")

    @field_validator("target_modules", mode="before")
    @classmethod
    def _all_linear(cls, value: Any) -> Any:
        return "all-linear" if value == ["all-linear"] else value  # the CLI's `--target-modules all-linear`

    def preflight(self, services: "ToolServices") -> dict[str, Any]:
        """Dataset lines, base model, device, free name and disk; the job stores the resolved config."""
        from graphtune.tools.training.data_files import locate
        from graphtune.tools.training.preflight import nvidia_gpu_present, validate_request

        objective = locate(services.settings.datasets_dir, self.dataset_name).metadata.get("objective")
        data = self.model_dump()
        refuse_without_effect(type(self), data, without_effect(data, objective, nvidia_gpu_present()))
        config = validate_request(services, self.model_dump(exclude_none=True))
        return {"config": config.to_dict()}

    def plan(self, services: "ToolServices") -> dict[str, Any]:
        """The dry run, answered at once (no job): preflight, then the plan the worker would follow."""
        from graphtune.tools.requests.no_effect import given
        from graphtune.tools.training.config import LoraJobConfig
        from graphtune.tools.training.data_files import locate
        from graphtune.tools.training.plan import plan_training

        config = LoraJobConfig.from_dict(self.preflight(services)["config"])
        data = self.model_dump()
        passed = {name: data[name] for name in self.public_fields() if given(type(self), data, name)}
        files = locate(services.settings.datasets_dir, self.dataset_name)
        return plan_training(services.settings, config, files, passed, services.store)


def without_effect(data: dict[str, Any], objective: str | None, gpu_present: bool) -> list[NoEffect]:
    """The training settings this request's mode never reads (refused by preflight, see no_effect)."""
    rules = []
    if objective != "knowledge":
        rules += [NoEffect("max_probes", "closed-book probes exist only for knowledge datasets and "
                           f"`dataset_name`={data.get('dataset_name')!r} is not one",
                           "Omit `max_probes`, or train on a dataset built with objective='knowledge'.")]
    elif not data.get("evaluate_probes", True):
        rules += [NoEffect("max_probes", "evaluate_probes=false answers no probes",
                           "Omit `max_probes`, or set evaluate_probes=true.")]
    off_gpu = data.get("device") in ("cpu", "mps") or (data.get("device") == "auto" and not gpu_present)
    if off_gpu:
        rules += [NoEffect("max_memory_gib", "it caps GPU memory and this job trains on the CPU/MPS",
                           "Omit `max_memory_gib` off CUDA (lower tokens_per_batch to use less RAM).")]
    one_rank = data.get("gpus") == 1 or (data.get("gpus") == "auto" and off_gpu)
    if one_rank and data.get("strategy") == "ddp":
        rules += [NoEffect("strategy", "it chooses how several GPUs share the work and this job runs one rank",
                           "Omit `strategy`, or set gpus to a count above 1.")]
    return rules
