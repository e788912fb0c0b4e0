"""CPU: what a shared prefix (graphtune.tools.training.shared_prefix) saves on a knowledge dataset.

Tokenizes the dataset's training rows with the base model's tokenizer and chat template, marks the
rows that start with the template's default opening, and plans the knowledge preset's packed rows
(max_seq_length 512, the CUDA budget of a model under 300M parameters: 49,152 tokens; and the CPU
budget, 4,096) with and without sharing. The plan is the same both ways (the same examples in every
row and step); sharing shortens the rows computed and, on CUDA, the one length rows are padded to.
Prints JSON: the prefix, the marked rows, and per budget the rows (optimizer steps) per epoch, the
examples per row, the computed tokens per row and per epoch, and the padded CUDA row length.

    python bench/shared_prefix_tokens.py [DATASET_FOLDER] [TOKENIZER_FOLDER]

Defaults: .devcarry/knowledge/datasets/email-facts (`python bench/knowledge.py prep`) and the
SmolLM2-135M-Instruct folder converted from its GGUF at /tmp/smol-conv.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(dataset: Path, tokenizer_folder: Path) -> dict:
    from transformers import AutoTokenizer

    from graphtune.tools.training import engine
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.data_files import read_conversations
    from graphtune.tools.training.shared_prefix import mark_examples, row_length, template_opening
    from graphtune.tools.training.tokenize import encode_all, ensure_chat_template

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_folder))
    ensure_chat_template(tokenizer)
    examples, report = encode_all(tokenizer, read_conversations(dataset / "train.jsonl"), 512)
    marks = mark_examples(examples, template_opening(tokenizer))
    marked = next((e for e in examples if e.shared_prefix), None)
    out = {"dataset": dataset.name, "rows": report.examples, "tokens": report.tokens,
           "mean_tokens_per_row": round(report.tokens / report.examples, 2), "marks": marks,
           "prefix_text": tokenizer.decode(marked.input_ids[:marked.shared_prefix]) if marked else ""}
    cfg = LoraJobConfig(dataset_name="x", base_model="x", max_seq_length=512, num_epochs=1)
    for device, budget in (("cuda", 49152), ("cpu", 4096)):
        for share in (False, True):
            run_cfg = cfg.updated(shared_prefix=share)
            plan = engine.make_plan(examples, run_cfg, device, budget=budget)
            computed = [row_length(b, plan.shared_prefix > 0) for b in plan.batches]
            out[f"{device}_{budget}_{'shared' if share else 'unshared'}"] = {
                "rows_per_epoch": len(plan.batches),
                "examples_per_row": round(statistics.mean(len(b) for b in plan.batches), 1),
                "computed_tokens_per_row": round(statistics.mean(computed), 1),
                "longest_computed_row": max(computed),
                "padded_row_tokens": engine.padded_row_tokens(plan, run_cfg, device),
                "unshared_tokens_per_row": round(plan.unshared_tokens / len(plan.batches), 1),
                "computed_tokens_per_epoch": plan.tokens}
    return out


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else root / ".devcarry/knowledge/datasets/email-facts"
    tokenizer_path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/tmp/smol-conv")
    print(json.dumps(main(folder, tokenizer_path), indent=1))
