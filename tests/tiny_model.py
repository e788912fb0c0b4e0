"""Build a tiny, randomly initialised Llama and a tokenizer trained on local text.

For offline demos and tests only (no hub access needed): it loads through the same
`base_model=<folder>` path a user's real model takes. It learns, but it knows nothing
until trained; use a real model (hub id or folder) for real work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]


def texts_from_jsonl(path: Path) -> list[str]:
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            out += [m["content"] for m in row.get("messages", [])] or [row.get("instruction", ""), row.get("output", "")]
    return out


def train_tokenizer(folder: Path, texts: Iterable[str], *, vocab_size: int = 1024) -> Any:
    """A byte-level BPE tokenizer trained on `texts`, with chat special tokens, saved to `folder`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from graphtune.tools.training.tokenize import DEFAULT_CHAT_TEMPLATE

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts) or ["graphtune"], trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|pad|>",
                                   bos_token="<|endoftext|>", additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    # a chat model's folder, like SmolLM2's (the template graphtune would install anyway): a folder
    # without one is a pretrained base, whose general replay is asked as plain text (base_style)
    fast.chat_template = DEFAULT_CHAT_TEMPLATE
    fast.save_pretrained(folder)
    return fast


def create_tiny_model(folder: Path, texts: Iterable[str], *, vocab_size: int = 1024, hidden: int = 64,
                      layers: int = 2, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    fast = train_tokenizer(folder, texts, vocab_size=vocab_size)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=True,
                         initializer_range=0.3)  # large enough that frozen embeddings allow confident logits
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
