"""MCP tool `start_fine_tuning`: queue a LoRA/QLoRA training job (returns a job id at once)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from graphtune.tools.jobs import JobView, job_view
from graphtune.tools.training.submit import submit_training
from pydantic import Field

if TYPE_CHECKING:
    from graphtune.server.services import Services


def start_fine_tuning(
    services: "Services",
    dataset_name: Annotated[str, Field(description="Dataset or JSONL path.")],
    base_model: Annotated[str, Field(description="See list_base_models.")],
    method: Annotated[Literal["lora", "qlora"], Field(description="qlora: CUDA only.")] = "lora",
    preset: Annotated[Literal["auto", "default", "knowledge"], Field(
        description="Defaults.")] = "auto",
    lora_rank: Annotated[int | None, Field(ge=4, le=64, description="Default 16.")] = None,
    lora_alpha: Annotated[float | None, Field(ge=1, le=128, description="Default 32.")] = None,
    lora_dropout: Annotated[float, Field(ge=0, le=0.5, description="Dropout.")] = 0.0,
    target_modules: Annotated[list[str] | Literal["all-linear"] | None, Field(
        description="Default q/k/v/o.")] = None,
    learning_rate: Annotated[float | None, Field(ge=1e-6, le=1e-2, description="Default 2e-4.")] = None,
    batch_size: Annotated[int | None, Field(ge=1, le=1024, description="Max per micro-batch.")] = None,
    gradient_accumulation_steps: Annotated[int, Field(ge=1, le=64, description="Micro-batches/step.")] = 1,
    num_epochs: Annotated[int | None, Field(ge=1, le=10, description="Default 3.")] = None,
    max_steps: Annotated[int | None, Field(ge=1, description="Step cap.")] = None,
    max_seq_length: Annotated[int | None, Field(ge=32, le=32768, description="Default 2048.")] = None,
    warmup: Annotated[float | None, Field(ge=0, description="Ratio or steps.")] = None,
    tokens_per_batch: Annotated[int | None, Field(ge=64, le=262144, description="Micro-batch tokens.")] = None,
    max_memory_gib: Annotated[float | None, Field(ge=1, description="GPU memory cap.")] = None,
    gradient_checkpointing: Annotated[Literal["auto", "on", "off"], Field(
        description="Memory saving.")] = "auto",
    eval_steps: Annotated[int | None, Field(ge=1, description="Default: per epoch.")] = None,
    save_steps: Annotated[int | None, Field(ge=1, description="Default 50.")] = None,
    seed: Annotated[int, Field(description="Seed.")] = 42,
    device: Annotated[Literal["auto", "cuda", "mps", "cpu"], Field(description="Device.")] = "auto",
    output_name: Annotated[str | None, Field(description="Model name.")] = None,
    init_adapter: Annotated[str | None, Field(description="Continue this model.")] = None,
    dry_run: Annotated[bool, Field(description="Estimate only.")] = False,
    evaluate_probes: Annotated[bool, Field(description="Probe after training.")] = True,
    max_probes: Annotated[int | None, Field(ge=1, le=100000, description="Default 600.")] = None,
) -> JobView:
    """Fine-tune with LoRA/QLoRA (job); dry_run estimates.

    Fine-tune a causal LM on a dataset with LoRA or QLoRA, as a background job.

    Inputs are validated before queueing (dataset lines, base model, ranges). Returns a job
    id at once: poll get_training_status for loss, tokens/s, ETA; cancel_job stops it with a
    checkpoint; resume_fine_tuning continues it. Start with dry_run=true to see token counts,
    steps and a memory/time estimate.
    """
    params = {k: v for k, v in locals().items() if k != "services" and v is not None}
    job = submit_training(services, params)
    return job_view(services.store, job.id)
