"""GGUF export bench (issue 19): export seconds, file size and peak memory per type, and a real llama.cpp
(npm node-llama-cpp 3.21.1) against graphtune on a knowledge model's closed-book probes: accuracy
and answers that end cleanly (stopped at the end-of-turn token) on each side.

    # CPU (the README demo model: SmolLM2-135M tuned on `bisect`): run the demo, then
    python bench/export.py --home ./demo-home                       # newest model in that data dir, q8_0
    # GPU box (the `email` knowledge model): the demo on a GPU teaches `email`, then
    bash scripts/demo.sh && python bench/export.py --home ./demo-home --types q8_0,f16,bf16 --max-probes 600
    # 8B-shaped export (random Llama-3-8B shape with SmolLM2's tokenizer + a rank-16 LoRA): time + peak memory
    python bench/export.py --home /tmp/gt-8b --shape-8b --types q8_0 --no-llama

The export runs in this process through the export job's own handler (run_export_job), so peak
memory is the larger `ru_maxrss` of this process (merge) and of the converter subprocess (Linux
counts a child's RSS from the fork on, so the converter's own figure cannot be told apart from the
merge's); peak GPU memory is torch's when CUDA is present. Run each type in a fresh process for a
per-type peak (the figures of later types in one run include the earlier ones). graphtune's answers come from the same code the evaluate job uses
(run_probes: greedy, per-probe token budget); llama.cpp gets the same budget per probe. Prints one
JSON line per type; --out appends them to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # llama_runtime (node-llama-cpp helper)


def _settings(home: str) -> Any:
    from graphtune.server.settings import load_settings

    settings = load_settings(home=home)
    settings.ensure_dirs()
    return settings


def _ctx(settings: Any) -> SimpleNamespace:
    def progress(current: int, total: int, unit: str, message: str) -> None:
        print(f"  [{current}/{total}] {message}", file=sys.stderr, flush=True)

    return SimpleNamespace(settings=settings, job_id="bench", progress=progress, check_cancel=lambda: None)


def newest_model(settings: Any) -> str:
    folders = [f for f in settings.models_dir.iterdir() if (f / "training_metadata.json").is_file()]
    if not folders:
        raise SystemExit(f"no fine-tuned model in {settings.models_dir}: run the demo first (bash scripts/demo.sh)")
    return max(folders, key=lambda f: f.stat().st_mtime).name


def export(settings: Any, model: str, output_type: str) -> dict[str, Any]:
    import torch

    from graphtune.tools.training.gguf_export import run_export_job

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = run_export_job({"model_name": model, "output_type": output_type, "overwrite": True}, _ctx(settings))
    seconds = time.perf_counter() - started
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"model": model, "output_type": output_type, "export_seconds": round(seconds, 1),
            "size_mb": round(result["size_bytes"] / 1e6, 1), "path": result["path"],
            "peak_rss_gib": round(max(self_kib, child_kib) / 2**20, 2),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None}


def _probes(settings: Any, model: str, limit: int) -> list[dict[str, Any]]:
    from graphtune.tools.training.evaluate import read_probes, select_probes
    from graphtune.tools.training.evaluate_job import probes_folder
    from graphtune.tools.training.registry import read_model_metadata

    dataset = (read_model_metadata(settings, model).get("dataset") or {}).get("name")
    return select_probes(read_probes(probes_folder(settings, dataset)), limit)


def graphtune_side(settings: Any, model: str, probes: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[int]]:
    from graphtune.tools.training.evaluate import reference_lengths, run_probes
    from graphtune.tools.training.generation import load_for_inference
    from graphtune.tools.training.registry import model_dir, read_model_metadata

    meta = read_model_metadata(settings, model)
    loaded, tokenizer = load_for_inference(meta["base_model"], model_dir(settings, model), "auto", settings)
    lengths = reference_lengths(tokenizer, probes)
    started = time.perf_counter()
    rows = run_probes(loaded, tokenizer, probes, disable_adapter=False, batch_size=16, lengths=lengths, deadline=None)
    print(f"  graphtune answered {len(rows)} probes in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows, lengths


def _ours(settings: Any, model: str, probes: list[dict[str, Any]], cache: str | None) -> tuple[list, list[int]]:
    """graphtune's answers, from `cache` when it holds them for these probes (same model and questions)."""
    key = {"model": model, "questions": [p["question"] for p in probes]}
    if cache and Path(cache).is_file():
        saved = json.loads(Path(cache).read_text(encoding="utf-8"))
        if saved.get("key") == key:
            print(f"  graphtune's {len(saved['rows'])} answers from {cache}", file=sys.stderr)
            return saved["rows"], saved["lengths"]
    rows, lengths = graphtune_side(settings, model, probes)
    if cache:
        Path(cache).write_text(json.dumps({"key": key, "rows": rows, "lengths": lengths}, default=str), encoding="utf-8")
    return rows, lengths


def llama_side(gguf: Path, probes: list[dict[str, Any]], lengths: list[int]) -> tuple[list[dict[str, Any]], int]:
    """llama.cpp's scored answers to the probes, and how many times node-llama-cpp had to be restarted."""
    from llama_runtime import ask, install

    from graphtune.tools.dataset.probe_scoring import score_answer
    from graphtune.tools.training.evaluate import answer_budget

    folder = install()
    if folder is None:
        raise SystemExit("node/npm missing or node-llama-cpp@3.21.1 could not be installed")
    questions = [{"text": p["question"], "max_tokens": answer_budget(n)} for p, n in zip(probes, lengths, strict=True)]
    started = time.perf_counter()
    threads = int(os.environ.get("LLAMA_THREADS", 0)) or len(os.sched_getaffinity(0))  # not os.cpu_count(): the host's
    reply = ask(folder, gguf, questions, threads=threads, timeout=3600)
    answers = reply["answers"]
    print(f"  llama.cpp answered {len(answers)} probes in {time.perf_counter() - started:.0f} s "
          f"({reply['restarts']} restarts after a node-llama-cpp crash)", file=sys.stderr)
    return [{"answer": a["text"], "correct": score_answer(a["text"], p["gold"])[0], "ended": a["stop_reason"] == "eogToken"}
            for p, a in zip(probes, answers, strict=True)], reply["restarts"]


def compare(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(ours)

    def pct(rows: list[dict[str, Any]], key: str) -> float:
        return round(100 * sum(bool(r[key]) for r in rows) / n, 1) if n else 0.0

    return {"probes": n, "graphtune_accuracy": pct(ours, "correct"), "llama_accuracy": pct(theirs, "correct"),
            "graphtune_clean_endings": pct(ours, "ended"), "llama_clean_endings": pct(theirs, "ended"),
            "same_answer": pct([{"same": a["answer"] == b["answer"]} for a, b in zip(ours, theirs, strict=True)], "same")}


def make_8b_shape(settings: Any, tokenizer_base: str = "smollm2-135m-instruct") -> str:
    """A random Llama-3-8B-shaped base (SmolLM2's tokenizer, which the converter knows) and a rank-16 LoRA
    registered as a model: exercises the export's memory and time at 8B scale (answers are noise).
    `tokenizer_base`: the built-in name, or the SmolLM2 GGUF's path where the built-in package is absent
    (the GPU machine: /tmp/gguf/SmolLM2-135M-Instruct.Q4_1.gguf, as bench/knowledge.py assembles it)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from graphtune.tools.training.base_models import resolve_base_model

    base, name = settings.home / "llama-8b-shape", "bench-8b-shape"
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(tokenizer_base, settings))
    if not (base / "config.json").is_file():
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                             num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                             rope_theta=500000.0, bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
        torch.manual_seed(0)
        torch.set_default_dtype(torch.bfloat16)  # random init in bf16, on the GPU when there is one (fast)
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            model = LlamaForCausalLM(config)
        torch.set_default_dtype(torch.float32)
        model.save_pretrained(base)
        del model
        tokenizer.save_pretrained(base)
    folder = settings.models_dir / name
    if not (folder / "adapter_config.json").is_file():
        model = LlamaForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
        peft = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj",
                                                                                     "o_proj"]))
        peft.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        (folder / "training_metadata.json").write_text(json.dumps({"name": name, "base_model": str(base)}))
    return name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="graphtune data dir holding the model")
    parser.add_argument("--model", help="model name (default: the newest in the data dir)")
    parser.add_argument("--types", default="q8_0", help="comma-separated output types")
    parser.add_argument("--max-probes", type=int, default=600)
    parser.add_argument("--shape-8b", action="store_true", help="export a random 8B-shaped model instead")
    parser.add_argument("--no-llama", action="store_true", help="export only (no probes)")
    parser.add_argument("--tokenizer-base", default="smollm2-135m-instruct",
                        help="--shape-8b: SmolLM2 built-in name or GGUF path that gives the tokenizer")
    parser.add_argument("--make-only", action="store_true", help="--shape-8b: build the 8B-shaped model and stop")
    parser.add_argument("--ours-cache", help="JSON file for graphtune's answers: reused when present (a later "
                        "call with other --types skips answering again), written otherwise")
    parser.add_argument("--out", help="append the JSON lines here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = _settings(args.home)
    model = make_8b_shape(settings, args.tokenizer_base) if args.shape_8b else (args.model or newest_model(settings))
    if args.make_only:
        print(json.dumps({"made": model}), flush=True)
        return 0
    machine = f"{platform.node()} {os.cpu_count()} CPUs" + _gpu_name()
    ours = lengths = probes = None
    for output_type in args.types.split(","):
        row = {"machine": machine, **export(settings, model, output_type)}
        if not args.no_llama and not args.shape_8b:
            probes = probes or _probes(settings, model, args.max_probes)
            if ours is None:
                ours, lengths = _ours(settings, model, probes, args.ours_cache)
            theirs, restarts = llama_side(Path(row["path"]), probes, lengths)
            row.update(compare(ours, theirs), llama_restarts=restarts)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
    return 0


def _gpu_name() -> str:
    import torch

    return f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"


if __name__ == "__main__":
    raise SystemExit(main())
