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
    cli_only: ClassVar[frozenset[str]] = frozenset({
        "lora_dropout", "gradient_accumulation_steps", "warmup", "tokens_per_batch", "max_memory_gib",
        "gradient_checkpointing", "eval_steps", "save_steps", "seed", "strategy", "general_replay_kl"})

    dataset_name: str = param(description="Dataset name (list_datasets) or path of a chat/alpaca JSONL file.")
    base_model: str = param(description="Model to fine-tune: built-in name, hub id, .gguf or folder "
                            "(list_base_models).")
    method: Literal["lora", "qlora"] = param("lora", description="lora (any device) or qlora (4-bit weights, CUDA "
                                             "only); default lora.")
    preset: Literal["auto", "default", "knowledge"] = param("auto", description=(
        "Defaults for settings left out; auto picks knowledge for knowledge datasets, else default."))
    lora_rank: int | None = param(None, ge=4, le=64, description="LoRA adapter rank (capacity); default 16, "
                                  "knowledge preset 64.")
    lora_alpha: float | None = param(None, ge=1, le=128, description="LoRA scaling factor alpha; default 32, "
                                     "knowledge preset 128.")
    lora_dropout: float = param(0.0, ge=0, le=0.5, description="Dropout on the LoRA input, 0-0.5; default 0 "
                                "(fastest).")
    target_modules: list[str] | Literal["all-linear"] | None = param(None, description=(
        "Layers to adapt: module names or all-linear; default q/k/v/o_proj, knowledge preset all-linear."))
    learning_rate: float | None = param(None, ge=1e-6, le=1e-2, description="Peak learning rate; default 2e-4, "
                                        "knowledge preset 1e-3.")
    batch_size: int | None = param(None, ge=1, le=1024, description="Most examples per micro-batch; default as many "
                                   "as fit tokens_per_batch.")
    gradient_accumulation_steps: int = param(1, ge=1, le=64, description="Micro-batches per optimizer step; "
                                             "default 1.")
    num_epochs: int | None = param(None, ge=1, le=10, description="Passes over the training split; default 3, "
                                   "knowledge preset 10.")
    max_steps: int | None = param(None, ge=1, le=10_000_000, description="Stop after this many optimizer steps; "
                                  "default no cap (epochs decide).")
    max_seq_length: int | None = param(None, ge=32, le=32768, description="Tokens kept per example (longer ones are "
                                       "truncated); default 2048, knowledge preset 512.")
    warmup: float | None = param(None, ge=0, le=100_000, description="Learning-rate warm-up: a ratio of all steps "
                                 "below 1, else a step count; default 0.03.")
    tokens_per_batch: int | None = param(None, ge=64, le=262144, description=(
        "Token budget of a packed micro-batch; default 4096 on CPU/MPS, 8192-49152 on CUDA by model size."))
    max_memory_gib: float | None = param(None, ge=1, le=4096, description="GPU memory ceiling in GiB for auto "
                                         "checkpointing; default 90% of the GPU.")
    gradient_checkpointing: Literal["auto", "on", "off"] = param("auto", description=(
        "Recompute activations to save memory: auto (only when needed), on or off; default auto."))
    eval_steps: int | None = param(None, ge=1, le=1_000_000, description="Eval loss every this many optimizer "
                                   "steps; default once per epoch.")
    save_steps: int | None = param(None, ge=1, le=1_000_000, description="Checkpoint every this many optimizer "
                                   "steps; default 50 (and at cancel).")
    seed: int = param(42, description="Random seed for data order and LoRA initialization; default 42.")
    device: Device = param("auto", description="Device to train on; default auto (CUDA, else MPS, else CPU).")
    gpus: int | Literal["auto"] = param("auto", description="GPUs to train on, one rank each, or auto; default auto "
                                        "(every visible GPU).", cli_help="torchrun starts one rank per GPU; on CPU a "
                                        "count starts that many gloo processes.")
    strategy: Literal["auto", "ddp", "fsdp"] = param("auto", description=(
        "Multi-GPU strategy: ddp, fsdp, or auto (DDP when the model fits one GPU); default auto."))
    output_name: str | None = param(None, description="Name of the model folder to create; default "
                                    "<dataset>-<method>-<job id>.")
    init_adapter: str | None = param(None, description="Continue training this finished model (name or alias) on "
                                     "the dataset; default none.", cli_help="Not resume: for that use "
                                     "resume_fine_tuning.")
    dry_run: bool = param(False, description="Answer at once with the resolved settings, steps and estimates; "
                          "queue nothing.")
    evaluate_probes: bool = param(True, description="Answer the dataset's probes closed-book after training; "
                                  "default true.")
    max_probes: int | None = param(None, ge=1, le=100000, description="Most probes answered after training, "
                                   "stratified by fact type; default 600.")
    general_replay: float | None = param(None, ge=0.0, le=0.5, description=(
        "Share of training rows that replay the base model's own answers to everyday prompts, 0-0.5, so the "
        "tuned model stays a good assistant; default 0, knowledge preset 0.2."))
    general_replay_kl: float | None = param(None, ge=0.0, le=10.0, description=(
        "Weight of a KL(base || tuned) term on the replayed answers' tokens, which keeps the tuned model's "
        "next-token distribution there at the base model's; 0 turns it off; default 0."))

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
