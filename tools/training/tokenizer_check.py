"""A sanity check of a tokenizer converted from a GGUF, before its folder is published.

Why: transformers before 5.18 converted Gemma GGUF tokenizers (gemma, gemma2, gemma3) into a
SentencePiece Unigram built from the file's scores, which for these files are not log-probabilities;
saved and loaded again it becomes a BPE without merges that splits every text into single
characters ("What is the capital of France?": 30 tokens instead of 7; `<start_of_turn>` 15).
The weights convert correctly, so nothing fails: the model is fed ids it never saw and answers
garbage, and a job would train on them. A real BPE / SentencePiece vocabulary encodes plain
English at 3-5 characters per token and decodes its ids back to the same text, so two short
samples tell a working tokenizer from such a broken one in milliseconds. The check runs on the
tokenizer as loaded back from the written folder (what training and generation load), not on the
object transformers returned from the GGUF: the two differed on transformers 5.17.

Worker only: check_converted_tokenizer imports transformers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from graphtune.tools.errors import ModelUnsupported

__all__ = ["FIRST_GOOD_TRANSFORMERS", "SAMPLES", "check_converted_tokenizer", "tokenizer_problem"]

# The first release whose GGUF tokenizer conversion (transformers/integrations/gguf, PR #48656)
# rebuilds Gemma's BPE merges; 5.0-5.17 build the broken Unigram described above.
FIRST_GOOD_TRANSFORMERS = "5.18"

# (text, the fewest characters per token a real subword vocabulary gives it). Plain English is
# 4.3 characters per token for both built-ins (SmolLM2's 49k and Gemma's 262k vocabulary); code
# splits finer (2.8-3.0). A character-level tokenizer gives 1.0 on both.
SAMPLES: tuple[tuple[str, float], ...] = (
    ("The quick brown fox jumps over the lazy dog, then it runs back home to sleep.", 2.5),
    ("def add(a, b):\n    return a + b  # the sum of both numbers\n", 1.5),
)


def tokenizer_problem(tokenizer: Any) -> str | None:
    """What is wrong with `tokenizer` (a phrase completing "the tokenizer ..."), or None when it
    round-trips each sample and splits it into subwords, not characters."""
    for text, min_chars_per_token in SAMPLES:
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if not ids:
            return f"encodes {text!r} into no tokens at all"
        decoded = tokenizer.decode(ids, skip_special_tokens=False)
        if decoded.strip() != text.strip():  # a leading space (SentencePiece's prefix) is no harm
            shown = decoded if len(decoded) <= 90 else decoded[:90] + "…"
            return f"does not decode its own ids back to the text ({text!r} came back as {shown!r})"
        if len(text) / len(ids) < min_chars_per_token:
            what = ("splits text into single characters" if len(ids) >= 0.9 * len(text)
                    else "splits text into pieces far shorter than its vocabulary's words")
            return (f"{what}: {len(text)} characters became {len(ids)} tokens (a working vocabulary needs "
                    f"at most {int(len(text) / min_chars_per_token)}): its merges are missing or unused")
    return None


def check_converted_tokenizer(folder: Path, *, model: str, field: str) -> None:
    """Load the tokenizer written into `folder` the way training will and refuse it when
    `tokenizer_problem` finds one (ModelUnsupported; the caller's staging removes the folder)."""
    import transformers
    from transformers import AutoTokenizer

    problem = tokenizer_problem(AutoTokenizer.from_pretrained(str(folder)))
    if problem is None:
        return
    version = transformers.__version__
    if _older_than(version, FIRST_GOOD_TRANSFORMERS):
        hint = (f'Upgrade transformers and run the job again: pip install -U "transformers>={FIRST_GOOD_TRANSFORMERS}" '
                "(older releases break some GGUF tokenizers: Gemma's become character-level).")
    else:
        hint = ("Pass the model's Hugging Face folder or hub id instead of the GGUF, or try a newer transformers "
                "(pip install -U transformers).")
    raise ModelUnsupported(
        f"the tokenizer converted from `{model}`'s GGUF by transformers {version} {problem}; a model fed such ids "
        "answers garbage and training on them teaches nothing, so the conversion was not kept.",
        field=field, hint=hint)


def _older_than(version: str, minimum: str) -> bool:
    """`version` < `minimum` on their numeric release parts ("5.17.0" < "5.18"; "5.18.0.dev0" is not:
    a development build of the first good release already carries its conversion)."""
    def release(text: str) -> tuple[int, ...]:
        head = re.match(r"\d+(?:\.\d+)*", text)
        return tuple(int(n) for n in head.group().split(".")[:3]) if head else ()

    return release(version) < release(minimum)
