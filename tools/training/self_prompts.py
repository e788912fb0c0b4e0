"""User prompts written by the base model itself, for general replay beyond the shipped set.

Why: replaying the base model's answers to the 505 shipped prompts keeps some of the assistant,
but a knowledge job needs thousands of replay rows, so each shipped prompt was seen ~90 times
(10 epochs x 9 repeats) and the tuned model learned those answers by heart rather than "stay
the base model outside the code base" (measured on an H200: general ability 64 % -> 46 %).
More distinct prompts from the base model's own distribution fix the repetition. Magpie
(Xu et al. 2024, 2406.08464) gets them with no seed data: give an instruct model its chat
template up to the start of a user turn and let it write the user's message. SmolLM2's own
instruction data (SmolTalk) was built that way, so its Magpie prompts are its home ground.
Openers ("What", "How do I", "In Python,") steer most prompts to short questions like the
ones people ask an assistant; a share stays unsteered.

Deterministic for a given base model and seed (the sampling is seeded per chunk); the prompts
are cached with the answers (AnswerCache kind "self_prompts"), so this runs once per base model.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

OPENERS = ("", "", "", "What", "What is", "Which", "How", "How do I", "How many", "Why", "Who", "When", "Where",
           "Is", "Can you", "Could you explain", "Explain", "Write", "Write a short", "Give me", "List", "Name",
           "Calculate", "Solve", "What is the difference between", "In Python,", "How can I", "Tell me",
           "Suggest", "Compare", "Summarize", "Define", "Translate", "Please", "I need", "Help me", "Describe",
           "Is it true that", "What are", "Convert")
PROMPT_MAX_NEW_TOKENS = 48
MIN_WORDS, MAX_WORDS = 3, 60
_MARK = "\u0000graphtune-user-turn\u0000"


def user_turn_prefix(tokenizer: Any) -> str:
    """The chat template's text up to where the user's message begins (system turn included when
    the template adds a default one, as SmolLM2's does)."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": _MARK}], tokenize=False,
                                         add_generation_prompt=False)
    if _MARK not in text:
        raise ValueError("the chat template does not place the user's message verbatim")
    return text[:text.index(_MARK)]


def normalized(prompt: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", prompt.lower()).strip()


def keep_prompt(prompt: str) -> bool:
    """A usable user prompt: a few words to a short paragraph, no role markers or leftovers of
    the template, printable text."""
    words = prompt.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    if "<|" in prompt or "|>" in prompt or "assistant" in prompt.lower()[:20]:
        return False
    return all(ch.isprintable() or ch in "\n\t" for ch in prompt)


def sample_user_prompts(model: Any, tokenizer: Any, count: int, *, seed: int, batch_size: int = 128,
                        exclude: Iterable[str] = ()) -> list[str]:
    """Up to `count` distinct user prompts sampled from the model (temperature 1, top-p 0.95),
    each started with an opener from OPENERS in turn; prompts that did not end within
    PROMPT_MAX_NEW_TOKENS, failed `keep_prompt`, or repeat one already kept or one in `exclude`
    (compared normalized) are dropped, so fewer than `count` may come back."""
    import torch
    from transformers import GenerationConfig

    from graphtune.tools.training.tokenize import end_of_turn_ids

    prefix = user_turn_prefix(tokenizer)
    stop_ids = sorted(set(end_of_turn_ids(tokenizer)))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    device = next(model.parameters()).device
    seen = {normalized(p) for p in exclude}
    kept: list[str] = []
    generator_seed = seed
    for start in range(0, count, batch_size):
        openers = [OPENERS[(start + i) % len(OPENERS)] for i in range(min(batch_size, count - start))]
        encoded = [tokenizer(prefix + o, add_special_tokens=False)["input_ids"] for o in openers]
        width = max(len(e) for e in encoded)
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, ids in enumerate(encoded):
            input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids):] = 1
        torch.manual_seed(generator_seed)
        generator_seed += 1
        config = GenerationConfig(max_new_tokens=PROMPT_MAX_NEW_TOKENS, do_sample=True, temperature=1.0, top_p=0.95,
                                  top_k=0, eos_token_id=stop_ids, pad_token_id=pad, use_cache=True)
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                                 generation_config=config)
        for opener, row in zip(openers, out[:, width:].tolist()):
            end = next((k for k, t in enumerate(row) if t in stop_ids), None)
            if end is None:
                continue
            text = tokenizer.decode(row[:end], skip_special_tokens=True)
            prompt = (opener + text).strip()  # the model continued the opener's text
            key = normalized(prompt)
            if keep_prompt(prompt) and key not in seen:
                seen.add(key)
                kept.append(prompt)
    return kept
