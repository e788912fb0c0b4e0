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
    dataset_name: Annotated[str, Field(description="A dataset from list_datasets, or a path to a chat/alpaca JSONL.")],
    base_model: Annotated[str, Field(description="Hub id (e.g. 'Qwen/Qwen2.5-0.5B-Instruct') or a local model "
                                     "folder with config.json.")],
    method: Annotated[Literal["lora", "qlora"], Field(description="lora, or qlora (4-bit, CUDA only).")] = "lora",
    preset: Annotated[Literal["auto", "default", "knowledge"], Field(
        description="Defaults for what you leave out. auto: knowledge for knowledge datasets (all-linear, rank 64, "
        "alpha 64, lr 5e-4, 10 epochs, max_seq_length 512), else default.")] = "auto",
    lora_rank: Annotated[int | None, Field(ge=4, le=64, description="LoRA rank (default 16).")] = None,
    lora_alpha: Annotated[float | None, Field(ge=1, le=128, description="LoRA alpha (default 32).")] = None,
    lora_dropout: Annotated[float, Field(ge=0, le=0.5, description="LoRA dropout.")] = 0.0,
    target_modules: Annotated[list[str] | Literal["all-linear"] | None, Field(
        description="Modules to adapt; default q/k/v/o projections; 'all-linear' for every linear layer.")] = None,
    learning_rate: Annotated[float | None, Field(ge=1e-6, le=1e-2, description="Peak learning rate "
                                                 "(default 2e-4).")] = None,
    batch_size: Annotated[int | None, Field(ge=1, le=1024, description="Max examples per micro-batch; default: "
                                            "as many as fit tokens_per_batch.")] = None,
    gradient_accumulation_steps: Annotated[int, Field(ge=1, le=64, description="Micro-batches per step.")] = 1,
    num_epochs: Annotated[int | None, Field(ge=1, le=10, description="Epochs (default 3).")] = None,
    max_steps: Annotated[int | None, Field(ge=1, description="Stop after N optimizer steps.")] = None,
    max_seq_length: Annotated[int | None, Field(ge=32, le=32768, description="Truncate longer examples "
                                                "(default 2048).")] = None,
    warmup: Annotated[float | None, Field(ge=0, description="Warm-up ratio (<1) or steps (>=1); default 0.03.")] = None,
    tokens_per_batch: Annotated[int | None, Field(ge=64, le=262144, description="Token budget of a packed "
                                                  "micro-batch; default 8192 on CUDA, 4096 on CPU/MPS.")] = None,
    max_memory_gib: Annotated[float | None, Field(ge=1, description="GPU memory ceiling; gradient checkpointing "
                                                  "covers just enough layers to fit (default: 90% of the GPU).")] = None,
    gradient_checkpointing: Annotated[Literal["auto", "on", "off"], Field(
        description="auto = only where memory needs it.")] = "auto",
    eval_steps: Annotated[int | None, Field(ge=1, description="Eval every N steps; default once per epoch.")] = None,
    save_steps: Annotated[int | None, Field(ge=1, description="Checkpoint every N steps; default 50.")] = None,
    seed: Annotated[int, Field(description="Seed.")] = 42,
    device: Annotated[Literal["auto", "cuda", "mps", "cpu"], Field(description="Where to train.")] = "auto",
    output_name: Annotated[str | None, Field(description="Model folder name under models/ (slug).")] = None,
    init_adapter: Annotated[str | None, Field(description="Continue from a finished model (list_models name or "
                                              "alias, e.g. 'current') on this dataset, e.g. a delta dataset. Not resume: for that use resume_fine_tuning.")] = None,
    dry_run: Annotated[bool, Field(description="Validate, tokenize, count tokens and estimate memory/time "
                                   "without training.")] = False,
    evaluate_probes: Annotated[bool, Field(description="If the dataset has probes (knowledge datasets): answer them "
                                           "closed-book with base and tuned model after training.")] = True,
    max_probes: Annotated[int | None, Field(ge=1, le=100000, description="Probes asked after training "
                                            "(default 600, spread over fact types).")] = None,
) -> JobView:
    """Fine-tune a causal LM on a dataset with LoRA or QLoRA, as a background job.

    Inputs are validated before queueing (dataset lines, base model, ranges). Returns a job
    id at once: poll get_training_status for loss, tokens/s, ETA; cancel_job stops it with a
    checkpoint; resume_fine_tuning continues it. Start with dry_run=true to see token counts,
    steps and a memory/time estimate.
    """
    params = {k: v for k, v in locals().items() if k != "services" and v is not None}
    job = submit_training(services, params)
    return job_view(services.store, job.id)
