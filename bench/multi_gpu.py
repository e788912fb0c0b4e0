"""Multi-GPU benchmark through the real job path: runner -> worker -> torchrun -> ranks.

Every run is a `train` job submitted like start_fine_tuning does it (same validation, same
launcher, same metrics); the figures are read from the job's own metrics events. Random-init
models of Llama shapes (no download) with a locally trained tokenizer; the synthetic chat
dataset follows the HF baseline's length distribution (log-normal, median ~330 tokens).

    python3 bench/multi_gpu.py make 8b            # /tmp/gt-bench/base-8b (bf16 weights + tokenizer)
    RUNS='[{"name": "8b-1gpu", "base": "8b", "gpus": 1, "max_steps": 40}, ...]' python3 bench/multi_gpu.py run

A run may set "cancel_at_step": N (cancel there, then resume with "resume_gpus") to check that
a stop on one GPU count and a resume on another give the loss of an uninterrupted run.
Prints one JSON line per run; bench/RESULTS.md has the figures and the command.
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

from train_throughput import SHAPES as THROUGHPUT_SHAPES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tiny_model (a test helper)

ROOT = Path(os.environ.get("BENCH_DIR", "/tmp/gt-bench"))
SHAPES = {**THROUGHPUT_SHAPES,  # the 8b/1b Llama shapes of the engine benchmark and the HF baseline
          "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,  # CPU smoke
                       num_key_value_heads=2, vocab_size=8192, max_position_embeddings=4096, tie_word_embeddings=True)}
WORDS = [f"w{i}" for i in range(3000)]


def make(shape: str) -> Path:
    import torch
    from tiny_model import train_tokenizer
    from transformers import AutoModelForCausalLM, LlamaConfig

    folder = ROOT / f"base-{shape}"
    if (folder / "config.json").exists():
        return folder
    fast = train_tokenizer(folder, [" ".join(random.Random(i).choices(WORDS, k=200)) for i in range(400)],
                           vocab_size=8000)
    cfg = LlamaConfig(**SHAPES[shape], rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    return folder


def make_dataset(datasets_dir: Path, n: int = 3000) -> str:
    name = "synthetic-chat"
    folder = datasets_dir / name
    if folder.exists():
        return name
    folder.mkdir(parents=True)
    rng = random.Random(0)

    def row() -> str:
        words = int(min(2000, max(48, math.exp(rng.gauss(5.8, 0.6)))) / 1.6)  # ~1.6 tokens per word
        cut = int(words * 0.4)
        text = rng.choices(WORDS, k=words)
        return json.dumps({"messages": [{"role": "user", "content": " ".join(text[:cut])},
                                        {"role": "assistant", "content": " ".join(text[cut:])}]}) + "\n"

    (folder / "train.jsonl").write_text("".join(row() for _ in range(n)))
    (folder / "eval.jsonl").write_text("".join(row() for _ in range(32)))
    (folder / "metadata.json").write_text(json.dumps({"name": name, "created_at": "2026-11-27T00:00:00Z"}))
    return name


def _metrics(store, job_id: str) -> list[dict]:
    return [e.data for e in store.events(job_id, type_="metrics", limit=100_000) if "loss" in e.data]


def _summary(store, job, run: dict, warm: int) -> dict:
    rows = _metrics(store, job.id)
    steady = [m["tokens_per_second"] for m in rows if m["step"] > warm and m.get("tokens_per_second")]
    last = rows[-1] if rows else {}
    return {"name": run["name"], "status": job.status.value, "error": job.error,
            "steady_tokens_per_second": round(statistics.median(steady)) if steady else None,
            "steps": last.get("step"), "final_loss": last.get("loss"),
            "peak_gib": last.get("gpu_memory_gib"), "peak_gib_per_gpu": last.get("gpu_memory_gib_per_gpu"),
            "eval_loss": (job.result or {}).get("eval_loss"),
            "distributed": [e.data for e in store.events(job.id, type_="distributed", limit=5)],
            "fast_path": (job.result or {}).get("fast_path"),
            "tokens_per_second_by_step": [round(m["tokens_per_second"]) for m in rows if m.get("tokens_per_second")]}


def run(runs: list[dict]) -> None:
    from graphtune.server.job_store import JobStatus
    from graphtune.server.services import Services
    from graphtune.server.settings import Settings
    from graphtune.tools.start_fine_tuning import submit_training
    from graphtune.tools.training.submit import resume_training

    settings = Settings(home=ROOT / "home")
    settings.ensure_dirs()
    services = Services.open(settings)
    dataset = make_dataset(settings.datasets_dir)

    def wait(job_id: str, until=None) -> object:
        while True:
            services.runner.tick()
            job = services.store.get(job_id)
            if job.status.is_final or (until and until()):
                return job
            time.sleep(0.5)

    for run_cfg in runs:
        base = make(run_cfg["base"])
        params = {"dataset_name": dataset, "base_model": str(base), "device": "cuda", "num_epochs": 1,
                  "output_name": f"{run_cfg['name']}-{int(time.time())}", "save_steps": 1000, "warmup": 0,
                  **{k: v for k, v in run_cfg.items() if k not in ("name", "base", "cancel_at_step", "resume_gpus",
                                                                  "warm")}}
        started = time.time()
        job = submit_training(services, params)
        out: dict = {}
        if run_cfg.get("cancel_at_step"):
            n = run_cfg["cancel_at_step"]
            wait(job.id, until=lambda: any(m["step"] >= n for m in _metrics(services.store, job.id)))
            services.store.request_cancel(job.id)
            stopped = wait(job.id)
            out["stopped_at_step"] = max(m["step"] for m in _metrics(services.store, job.id))
            out["stopped_status"] = stopped.status.value
            resume_training(services, job.id, run_cfg.get("resume_gpus"))
        final = wait(job.id)
        out = {**_summary(services.store, final, run_cfg, run_cfg.get("warm", 8)), **out,
               "wall_seconds": round(time.time() - started, 1)}
        if final.status is not JobStatus.SUCCEEDED:
            log = settings.work_dir / job.id / "ranks.log"
            out["ranks_log_tail"] = log.read_text(errors="replace")[-3000:] if log.exists() else None
        print(json.dumps(out), flush=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["make"]:
        print(make(argv[1]))
        return 0
    if argv[:1] == ["run"]:
        run(json.loads(os.environ["RUNS"]))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
