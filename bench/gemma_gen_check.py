"""Does a converted base model speak? Not a timing: a diagnosis.

    python bench/gemma_gen_check.py [CONVERTED_FOLDER_OR_ITS_CONFIG_JSON]

Seventh session, one H200: Gemma 3 270M answered garbage there ('<sT>aT>r>e...'), base and tuned alike.
This loads one converted folder (default: the first Gemma folder under /tmp/kh/base_models/.gguf-cache)
in bf16 and fp32, with sdpa and eager attention, and answers two prompts through plain `generate` and
through graphtune's batched generation. Garbage in every cell points at the conversion (weights or
tokenizer), not at generation; then compare sha256 of model.safetensors and tokenizer.json with a
conversion made elsewhere, and tokenize a sentence (characters per token).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from graphtune.tools.training.generation import generate_chat_detailed

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CONVERSATIONS = [[{"role": "user", "content": "What is the capital of France?"}],
                 [{"role": "user", "content": "Which keyword defines a function in Python? One word, please."}]]


def converted_folder(argv: list[str]) -> Path:
    if argv:
        given = Path(argv[0])
        return given.parent if given.name == "config.json" else given
    found = sorted(Path("/tmp/kh/base_models/.gguf-cache").glob("gemma*/config.json"))
    if not found:
        raise SystemExit("no converted Gemma folder under /tmp/kh/base_models/.gguf-cache: pass one")
    return found[0].parent


def main(argv: list[str]) -> int:
    folder = converted_folder(argv)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    sentence = "The quick brown fox jumps over the lazy dog."
    print(f"{folder}\n{len(sentence)} characters -> {len(tokenizer(sentence)['input_ids'])} tokens")
    for dtype in (torch.bfloat16, torch.float32):
        for attention in ("sdpa", "eager"):
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation=attention)
            model = model.to(DEVICE).eval()
            ids = tokenizer.apply_chat_template(CONVERSATIONS[0], add_generation_prompt=True, return_tensors="pt")
            ids = (ids["input_ids"] if hasattr(ids, "keys") else ids).to(DEVICE)
            out = model.generate(ids, max_new_tokens=24, do_sample=False)
            print(dtype, attention, "generate:", repr(tokenizer.decode(out[0, ids.shape[1]:])))
            answers = generate_chat_detailed(model, tokenizer, CONVERSATIONS, max_new_tokens=24, batch_size=2)
            print("  graphtune:", [a.text for a in answers])
            del model
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
