"""CLI subcommands for training (train, resume, models, base-models, ask) and the end-to-end demo."""

from __future__ import annotations

import argparse
from typing import Any, Callable


def cmd_train(args: argparse.Namespace, start: Callable[..., int]) -> int:
    return start(args, "start_fine_tuning", dataset_name=args.dataset_name, base_model=args.base_model,
                 method=args.method, preset=args.preset, lora_rank=args.lora_rank, lora_alpha=args.lora_alpha,
                 lora_dropout=args.lora_dropout, target_modules=_targets(args.target_modules), learning_rate=args.learning_rate,
                 batch_size=args.batch_size, gradient_accumulation_steps=args.gradient_accumulation_steps,
                 num_epochs=args.num_epochs, max_steps=args.max_steps, max_seq_length=args.max_seq_length,
                 eval_steps=args.eval_steps, tokens_per_batch=args.tokens_per_batch,
                 max_memory_gib=args.max_memory_gib, gradient_checkpointing=args.gradient_checkpointing, save_steps=args.save_steps, seed=args.seed, device=args.device,
                 output_name=args.output_name, init_adapter=args.init_adapter, dry_run=args.dry_run,
                 gpus=_gpus(args.gpus), strategy=args.strategy)


def _gpus(value: str | None) -> Any:
    return value if value in (None, "auto") else int(value)


def _targets(values: list[str] | None) -> Any:
    return "all-linear" if values == ["all-linear"] else values


def cmd_resume(args: argparse.Namespace, start: Callable[..., int]) -> int:
    return start(args, "resume_fine_tuning", job_id=args.job_id, gpus=_gpus(args.gpus))


def cmd_models(args: argparse.Namespace) -> int:
    from graphtune.server.cli import _emit, call_tool

    _emit(call_tool(args, "list_models", limit=args.limit))
    return 0


def cmd_base_models(args: argparse.Namespace) -> int:
    from graphtune.server.cli import _emit, call_tool

    _emit(call_tool(args, "list_base_models", kind=args.kind, limit=args.limit))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """ask_model, then follow the job if it was not done within the tool's wait."""
    from graphtune.server.cli import _emit, call_tool, follow

    result = call_tool(args, "ask_model", prompt=args.prompt, model=args.model, compare=args.compare,
                       system_prompt=args.system_prompt, max_new_tokens=args.max_new_tokens,
                       timeout_seconds=args.timeout_seconds, wait_seconds=30, device=args.device)
    if result.status == "succeeded":
        _emit(result)
        return 0
    final = follow(args, result.job_id)
    _emit(call_tool(args, "get_training_status", job_id=result.job_id, detail=True))
    return 0 if final["status"] == "succeeded" else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from graphtune.server.demo import run_demo

    return run_demo(args)


def add_training_commands(sub: Any, start: Callable[..., int], wait_flag: Callable[[Any], None]) -> None:
    p = sub.add_parser("train", help="fine-tune a model with LoRA/QLoRA (job)")
    p.add_argument("dataset_name")
    p.add_argument("base_model")
    p.add_argument("--method", choices=["lora", "qlora"], default="lora")
    p.add_argument("--preset", choices=["auto", "default", "knowledge"], default="auto",
                   help="defaults for settings left out (auto: knowledge for knowledge datasets)")
    p.add_argument("--lora-rank", type=int, help="default 16 (knowledge preset: 64)")
    p.add_argument("--lora-alpha", type=float, help="default 32 (knowledge preset: 128)")
    p.add_argument("--lora-dropout", type=float, default=0.0)
    p.add_argument("--target-modules", nargs="+", help="module names, or all-linear")
    p.add_argument("--learning-rate", type=float, help="default 2e-4 (knowledge preset: 1e-3)")
    p.add_argument("--batch-size", type=int, help="max examples per micro-batch (default: fill tokens_per_batch)")
    p.add_argument("--gradient-accumulation-steps", type=int, default=1)
    p.add_argument("--num-epochs", type=int, help="default 3 (knowledge preset: 10)")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--max-seq-length", type=int, help="default 2048 (knowledge preset: 512)")
    p.add_argument("--eval-steps", type=int)
    p.add_argument("--tokens-per-batch", type=int)
    p.add_argument("--max-memory-gib", type=float)
    p.add_argument("--gradient-checkpointing", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--save-steps", type=int)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", choices=["auto", "cuda", "mps", "cpu"], default="auto")
    p.add_argument("--output-name")
    p.add_argument("--init-adapter")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--gpus", default="auto", help="ranks: 'auto' (every visible GPU) or a count (torchrun)")
    p.add_argument("--strategy", choices=["auto", "ddp", "fsdp"], default="auto",
                   help="multi-GPU: DDP when the model fits one card, else FSDP (auto)")
    wait_flag(p)
    p.set_defaults(func=lambda a: cmd_train(a, start))

    p = sub.add_parser("resume", help="resume a stopped training job from its newest checkpoint")
    p.add_argument("job_id")
    p.add_argument("--gpus", help="resume on another GPU count (same data order)")
    wait_flag(p)
    p.set_defaults(func=lambda a: cmd_resume(a, start))

    p = sub.add_parser("merge", help="merge a fine-tuned adapter into its base model (job)")
    p.add_argument("model_name")
    p.add_argument("--output-name")
    wait_flag(p)
    p.set_defaults(func=lambda a: start(a, "merge_adapter", model_name=a.model_name, output_name=a.output_name))

    p = sub.add_parser("models", help="list fine-tuned models")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("base-models", help="list base models usable offline (built-ins, GGUF, folders, HF cache)")
    p.add_argument("--kind", choices=["all", "builtin", "gguf", "folder", "merged", "hub_cache"], default="all")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_base_models)

    p = sub.add_parser("ask", help="answer a prompt with a base or fine-tuned model (job)")
    p.add_argument("model", help="fine-tuned model (list_models) or base model (base-models)")
    p.add_argument("prompt")
    p.add_argument("--compare", action="store_true", help="also answer with the fine-tuned model's base")
    p.add_argument("--system-prompt")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--timeout-seconds", type=int, default=300)
    p.add_argument("--device", choices=["auto", "cuda", "mps", "cpu"], default="auto")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("demo", help="end to end with a real model: ingest a real code base, knowledge dataset, "
                       "LoRA-train SmolLM2-135M-Instruct, closed-book accuracy base vs tuned")
    p.add_argument("--package", help="installed package or module to teach (default: email on a GPU, colorsys "
                   "on CPU, so the CPU demo ends within ~10 minutes)")
    p.add_argument("--base-model", default="smollm2-135m-instruct", help="base model (see base-models)")
    p.set_defaults(func=cmd_demo)
