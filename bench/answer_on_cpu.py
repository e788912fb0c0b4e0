"""Answer a dataset's held-out probes on the CPU with an adapter trained on the GPU.

Why: a tuned model that fits its training rows (Gemma 3 270M: eval loss 0.071) but garbles held-out
questions on the GPU is either a model that learned the wrong thing or a GPU path (Liger's kernels,
flex_attention, bf16) that trains one function and generates with another. Answering the same probes
here, with transformers' own fp32 sdpa path and no Liger, tells the two apart: the same accuracy as
on the GPU means the model; a much higher one means the GPU path.

    python bench/answer_on_cpu.py BASE ADAPTER_DIR DATASET_DIR [--limit N]

BASE: the base model as the job named it (a .gguf path converts once, into the default graphtune
home); ADAPTER_DIR: adapter_model.safetensors + adapter_config.json (a device call's $OUT copies,
renamed); DATASET_DIR: the dataset's folder (probes.jsonl). Prints the knowledge report's accuracy
lines and writes cpu_answers.jsonl beside the adapter.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("adapter_dir", type=Path)
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("--limit", type=int, default=120, help="probes answered (CPU time: ~1 s each)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: the GPU in fp32 (--fp32) with "
                        "transformers' own attention and no Liger isolates bf16 and the training path's kernels")
    parser.add_argument("--fp32", action="store_true", help="cast the model to fp32 (the default on the CPU)")
    args = parser.parse_args(argv)
    import torch

    from graphtune.server.settings import Settings
    from graphtune.tools.training.evaluate import accuracy_table, evaluate_knowledge, read_probes, select_probes
    from graphtune.tools.training.generation import load_for_inference

    torch.manual_seed(0)
    model, tokenizer = load_for_inference(args.base, args.adapter_dir, args.device, Settings())
    if args.fp32:
        model = model.float()
    probes = select_probes(read_probes(args.dataset_dir), args.limit)
    report, rows = evaluate_knowledge(model, tokenizer, probes, args.device, include_base=False, general=True)
    print("\n".join(accuracy_table(report)))
    print(json.dumps({"tuned": {k: report["tuned"].get(k) for k in ("accuracy", "core_accuracy", "ended_cleanly")},
                      "general": report.get("general"), "examples": report["examples"][:6]}, indent=1))
    with open(args.adapter_dir / f"{args.device}_answers.jsonl", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
