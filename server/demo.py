"""`graphtune demo`: the main job end to end on the embedded graph, through the same tool
functions and job runner the MCP server uses.

validate -> ingest a real installed package -> extract a dataset -> build a tiny random
Llama + tokenizer locally (no hub access needed) -> LoRA fine-tune on CPU -> show status,
metrics, the adapter's location, and load it back with peft to generate.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def _say(text: str) -> None:
    print(text, flush=True)


def _job(args: argparse.Namespace, tool: str, **kwargs: Any) -> dict[str, Any]:
    from graphtune.server.cli import call_tool, follow

    view = call_tool(args, tool, **kwargs)
    final = follow(args, view.job_id)
    if final["status"] != "succeeded":
        raise SystemExit(f"{tool} job {final['job_id']} ended {final['status']}: {json.dumps(final.get('error'))}")
    detail = call_tool(args, "get_training_status", job_id=view.job_id, detail=True)
    return detail.model_dump(mode="json")


def run_demo(args: argparse.Namespace) -> int:
    from graphtune.server.cli import _services, call_tool

    settings = _services(args).settings
    _say(f"== graphtune demo (data dir {settings.home})")
    report = call_tool(args, "validate_environment")
    _say(f"1. environment: {report.summary}; training device: {report.device}")
    ingest = _job(args, "ingest_codebase", package=args.package)["result"]
    _say(f"2. ingested `{args.package}`: {ingest['files_parsed']} files parsed ({ingest['files_unchanged']} unchanged), "
         f"graph now {json.dumps({k: ingest['graph_counts'][k] for k in ('CodeFile', 'Class', 'Function', 'Method', 'CALLS')})}")
    name = f"demo-{args.package.replace('_', '-')}"
    data = _job(args, "extract_training_data", dataset_name=name, max_records=300, overwrite=True)["result"]
    _say(f"3. dataset `{name}`: {data['train_examples']} train / {data['eval_examples']} eval examples from "
         f"{data['records_selected']} records (of {data['records_read']} read); tasks {data['examples_by_task']}")
    base = _tiny_base_model(settings, name)
    _say(f"4. base model: tiny random-init Llama at {base} (offline stand-in; pass a hub id for real work)")
    run = _job(args, "start_fine_tuning", dataset_name=name, base_model=str(base), num_epochs=args.epochs,
               learning_rate=3e-3, lora_rank=16, target_modules="all-linear", max_seq_length=1024)
    result = run["result"]
    _say(f"5. trained `{result['model_name']}` in {result['duration_seconds']}s, {result['steps']} steps, "
         f"{result['tokens_trained']} tokens; eval loss {result['base_eval_loss']:.3f} (base) -> "
         f"{result['eval_loss']:.3f} (fine-tuned), perplexity {result['base_perplexity']:.1f} -> {result['perplexity']:.1f}")
    _say(f"   latest metrics: {json.dumps(run['latest_metrics'])}")
    _say(f"   adapter, tokenizer, model card and loss.png in {result['path']}")
    models = call_tool(args, "list_models", limit=3)
    _say(f"6. list_models: {[m.name for m in models.models]}")
    _say(f"7. loading the adapter with peft and generating:\n{_generate(base, result['path'], settings)}")
    return 0


def _tiny_base_model(settings: Any, dataset: str) -> Any:
    from graphtune.tools.training.tiny_model import create_tiny_model, texts_from_jsonl

    folder = settings.home / "base-models" / "tiny-llama"
    if not (folder / "config.json").exists():
        create_tiny_model(folder, texts_from_jsonl(settings.datasets_dir / dataset / "train.jsonl"))
    return folder


def _generate(base: Any, adapter: str, settings: Any) -> str:
    from pathlib import Path

    from graphtune.tools.training.generation import generate_chat_detailed, load_for_inference

    model, tokenizer = load_for_inference(str(base), Path(adapter), "cpu", settings)
    question = "What does the module `email.errors` provide?"
    [answer] = generate_chat_detailed(model, tokenizer, [[{"role": "user", "content": question}]], max_new_tokens=40)
    return (f"   question: {question!r}\n   answer (tiny model, a few epochs: expect rough text): {answer.text!r} "
            f"({answer.new_tokens} tokens, {'ended its turn' if answer.ended_cleanly else 'hit max_new_tokens'})")
