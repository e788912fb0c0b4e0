"""CLI subcommands for training and models (train, resume, merge, export, evaluate, compare, models,
base-models, ask) and the end-to-end demo."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from graphtune.server.cli_args import add_request_arguments, request_kwargs
from graphtune.server.cli_common import add_tool_command, call_tool, follow, output, start_job, tool_arguments
from graphtune.server.demo import CPU_PACKAGE, GPU_PACKAGE
from graphtune.tools.requests import AskRequest, CompareRequest, EvaluateRequest, ExportRequest, MergeRequest, TrainRequest

__all__ = ["add_training_commands"]

ASK_WAIT_S = 30  # then the CLI follows the job with a progress display


def cmd_ask(args: argparse.Namespace) -> int:
    """ask_model, then follow the job if it was not done within the tool's wait."""
    result = call_tool(args, "ask_model", **{"wait_seconds": ASK_WAIT_S, **request_kwargs(args, AskRequest)})
    if result.status == "succeeded":
        output(args, result)
        return 0
    final = follow(args, result.job_id)
    output(args, call_tool(args, "get_training_status", job_id=result.job_id, detail=True))
    return 0 if final["status"] == "succeeded" else 1


def cmd_export(args: argparse.Namespace) -> int:
    """export_model, then follow the job with progress and print the file and the Ollama commands."""
    import sys

    view = call_tool(args, "export_model", **request_kwargs(args, ExportRequest))
    final = follow(args, view.job_id)
    result = final.get("result") or {}
    if final["status"] != "succeeded" or getattr(args, "json", False):
        output(args, {k: final[k] for k in ("job_id", "kind", "status", "result", "error") if final.get(k) is not None})
        return 0 if final["status"] == "succeeded" else 1
    size = (result.get("size_bytes") or 0) / 1e6
    verb = "reused" if result.get("reused") else "wrote"
    print(f"{verb} {result['path']} ({result['output_type']}, {size:.1f} MB; chat template and end-of-turn tokens "
          f"{', '.join(result.get('end_of_turn_tokens') or [])} inside)", file=sys.stderr)
    print(f"Ollama Modelfile: {result['modelfile']}\nNext, run it in Ollama:", file=sys.stderr)
    print(f"{result['ollama_create']}\n{result['ollama_run']}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from graphtune.server.demo import run_demo

    return run_demo(args)


def add_training_commands(sub: Any, add_job_command: Callable[..., argparse.ArgumentParser],
                          wait_flag: Callable[[Any], None]) -> None:
    add_job_command(sub, "train", "start_fine_tuning", TrainRequest, "fine-tune a model with LoRA/QLoRA (job)")

    p = add_tool_command(sub, "resume", "resume_fine_tuning", "resume a stopped training job from its newest "
                         "checkpoint", ("job_id",), lambda a: start_job(a, "resume_fine_tuning",
                                                                        **tool_arguments(a, "resume_fine_tuning")))
    wait_flag(p)

    add_job_command(sub, "merge", "merge_adapter", MergeRequest, "merge a fine-tuned adapter into its base model (job)")
    p = sub.add_parser("export", help="export a fine-tuned model to GGUF + an Ollama Modelfile (job; follows it)",
                       description="Merge a fine-tuned model into its base and convert it to one GGUF file for "
                       "llama.cpp, Ollama and LM Studio. Example: graphtune export myproj-v1 --output-type q8_0")
    add_request_arguments(p, ExportRequest)
    p.set_defaults(func=cmd_export)
    add_job_command(sub, "evaluate", "evaluate_model", EvaluateRequest,
                    "closed-book accuracy of a fine-tuned model vs its base on a dataset's probes (job)")
    add_job_command(sub, "compare", "compare_models", CompareRequest,
                    "two models on the same probes, per fact type (job)")

    add_tool_command(sub, "models", "list_models", "list fine-tuned models")
    add_tool_command(sub, "base-models", "list_base_models",
                     "list base models usable offline (built-ins, GGUF, folders, HF cache)")

    p = sub.add_parser("ask", help="answer a prompt with a base or fine-tuned model (job)")
    add_request_arguments(p, AskRequest)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("demo", help="end to end with a real model: ingest a real code base, knowledge dataset, "
                       "LoRA-train SmolLM2-135M-Instruct, closed-book accuracy base vs tuned")
    p.add_argument("--package", help=f"installed package or module to teach (default: {GPU_PACKAGE} on a GPU, "
                   f"{CPU_PACKAGE} on CPU, so the CPU demo ends within ~10 minutes)")
    p.add_argument("--base-model", default="smollm2-135m-instruct", help="base model (see base-models)")
    p.set_defaults(func=cmd_demo)
