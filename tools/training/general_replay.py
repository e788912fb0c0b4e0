"""General replay: the base model's own answers to everyday prompts, mixed into training.

Why: narrow fact training at a knowledge-sized learning rate overwrites the assistant (measured:
everyday questions 75 % right before, 36 % after). Rehearsing general behaviour keeps it, and
the base model can supply that behaviour itself, offline (Self-Synthesized Rehearsal, 2403.01244):
the prompts ship with graphtune (general_prompts.jsonl, written by the project), the answers are
the base model's greedy answers, generated once per base model and cached beside its conversion
(AnswerCache under base_models/answers), so a second job pays nothing.

`general_replay` is the fraction of training rows that are replay rows: 0.2 adds one replay row
for every four dataset rows (prompts repeat when the dataset is larger than the prompt set).
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable

REPLAY_MAX_NEW_TOKENS = 256
REPLAY_SEED = 1234  # a fixed order: a small job uses a prefix of it, so a larger one reuses those answers


def replay_rows_needed(dataset_rows: int, fraction: float) -> int:
    """Rows to add so that they are `fraction` of all rows."""
    if fraction <= 0 or dataset_rows <= 0:
        return 0
    return math.ceil(fraction / (1 - fraction) * dataset_rows)


def _prompt_order() -> list[dict[str, Any]]:
    from graphtune.tools.training.general_ability import read_general_prompts

    prompts = read_general_prompts()
    random.Random(REPLAY_SEED).shuffle(prompts)
    return prompts


def replay_conversations(rows: int, *, cache: Any, answer: Callable[[list[list[dict[str, str]]]], list[Any]],
                         progress: Callable[[str], None] | None = None) -> list[list[dict[str, str]]]:
    """`rows` replay conversations (user prompt, the base model's answer), distinct prompts first.

    `answer(conversations)` returns generation.Generation per conversation (the base model,
    greedy); it is called only for prompts not cached yet. Answers that did not end within
    REPLAY_MAX_NEW_TOKENS are left out: training on a cut-off answer would teach stopping mid-sentence."""
    if rows <= 0:
        return []
    prompts = _prompt_order()
    wanted = prompts[:min(rows, len(prompts))]
    cached: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(wanted):
        payload = {"prompts": [[p["id"], p["prompt"]] for p in chunk], "max_new_tokens": REPLAY_MAX_NEW_TOKENS,
                   "decoding": "greedy-v1"}
        answers = cache.get("replay", payload) if cache is not None else None
        if answers is None:
            if progress:
                progress(f"answering {len(chunk)} general prompts with the base model (once per base model)")
            generations = answer([[{"role": "user", "content": p["prompt"]}] for p in chunk])
            answers = [{"id": p["id"], "answer": g.text, "ended": g.ended_cleanly} for p, g in zip(chunk, generations,
                                                                                                  strict=True)]
            if cache is not None:
                cache.put("replay", payload, answers)
        cached.update({a["id"]: a for a in answers})
    usable = [[{"role": "user", "content": p["prompt"]}, {"role": "assistant", "content": cached[p["id"]]["answer"]}]
              for p in wanted if cached[p["id"]]["ended"] and cached[p["id"]]["answer"].strip()]
    if not usable:
        return []
    return [usable[i % len(usable)] for i in range(rows)]


def _chunks(prompts: list[dict[str, Any]], size: int = 64) -> list[list[dict[str, Any]]]:
    """Fixed 64-prompt chunks of the fixed order: each is cached on its own, so a job that needs
    more prompts than an earlier one answers only the chunks it adds."""
    return [prompts[i:i + size] for i in range(0, len(prompts), size)]
