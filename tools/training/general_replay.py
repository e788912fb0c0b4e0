"""General replay: the base model's own answers to everyday prompts, mixed into training.

Why: narrow fact training at a knowledge-sized learning rate overwrites the assistant (measured:
everyday questions 75 % right before, 36 % after). Rehearsing general behaviour keeps it, and
the base model can supply that behaviour itself, offline (Self-Synthesized Rehearsal, 2403.01244):
the prompts ship with graphtune (general_prompts.jsonl, written by the project), the answers are
the base model's greedy answers, generated once per base model and cached beside its conversion
(AnswerCache under base_models/answers), so a second job pays nothing.

`general_replay` is the fraction of training rows that are replay rows: 0.2 adds one replay row
for every four dataset rows. The shipped prompts come first; when a job needs more rows than
they supply, the base model writes further user prompts itself (self_prompts.py, Magpie) up to
MAX_DISTINCT_PROMPTS, and only then do prompts repeat. Why: replaying 347 usable shipped
prompts ~90 times each (an `email` job) taught their answers by heart and kept little of the
assistant on other questions.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, NamedTuple

from graphtune.tools.training.self_prompts import normalized

REPLAY_MAX_NEW_TOKENS = 256
CHAT_DECODING = "greedy-v1"  # asked in the base model's chat format (part of each cached chunk's key)
# A base without a chat template of its own (base_style) is asked as plain text, one line per answer:
COMPLETION_DECODING = "completion-v1"
# how the replay answers were asked, as the job metadata (`general_replay.answers`) records it
CHAT_ANSWERS = "chat"
PLAIN_TEXT_ANSWERS = "plain text: the base model has no chat template of its own (base_style)"
COMPLETION_PROMPT = "Question: {prompt}\nAnswer:"
COMPLETION_MAX_NEW_TOKENS = 128
REPLAY_SEED = 1234  # a fixed order: a small job uses a prefix of it, so a larger one reuses those answers
MAX_DISTINCT_PROMPTS = 2048  # beyond this, rows repeat prompts (each chunk costs base-model generation once)
SELF_PROMPT_CHUNK = 256
SELF_PROMPT_VERSION = "magpie-v1"


class ReplaySet(NamedTuple):
    """A job's replay conversations and how the base model was asked for them. Only answers asked in
    the chat format carry the KL-to-base term: on a base without a chat template of its own, the base
    model's distribution in that format is the noise the plain-text answers replace."""
    conversations: list[list[dict[str, str]]]
    decoding: str = CHAT_DECODING

    @property
    def takes_kl(self) -> bool:
        return self.decoding == CHAT_DECODING


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


Conversation = list[dict[str, str]]
Answerer = Callable[[list[Conversation]], list[Any]]
PromptSampler = Callable[[int, int], list[str]]


def replay_conversations(rows: int, *, cache: Any, answer: Answerer, sample: PromptSampler | None = None,
                         progress: Callable[[str], None] | None = None, decoding: str = CHAT_DECODING
                         ) -> list[Conversation]:
    """`rows` replay conversations (user prompt, the base model's answer), distinct prompts first.

    `answer(conversations)` returns generation.Generation per conversation (the base model,
    greedy); it is called only for prompts not cached yet. `sample(count, seed)` returns user
    prompts written by the base model (self_prompts.sample_user_prompts), asked for only when
    `rows` exceeds the shipped prompts; without it only the shipped prompts are used. Answers
    that did not end within REPLAY_MAX_NEW_TOKENS are left out: training on a cut-off answer
    would teach stopping mid-sentence. `decoding` names how `answer` asks (CHAT_DECODING or
    COMPLETION_DECODING): answers cached one way are never served for the other."""
    if rows <= 0:
        return []
    shipped = _prompt_order()
    usable = _answered(_chunks(shipped[:min(rows, len(shipped))]), cache, answer, progress, decoding)
    distinct = min(rows, MAX_DISTINCT_PROMPTS)
    # Self-written prompts only when a job needs more distinct prompts than are shipped: a base model
    # whose answers to the shipped prompts do not end (a tiny test model) gains nothing from writing
    # more prompts, and each costs a generation. One that ended none of them (a pretrained, not
    # instruction-tuned base such as Gemma 3 270M) would write and answer up to 33 chunks of 256
    # prompts for no row at all.
    if sample is not None and usable and distinct > len(shipped) and len(usable) < distinct:
        usable += _self_prompted(distinct - len(usable), {p["prompt"] for p in shipped}, cache, answer, sample,
                                 progress, decoding)
    if not usable:
        return []
    return [usable[i % len(usable)] for i in range(rows)]


def _answered(groups: list[list[dict[str, Any]]], cache: Any, answer: Answerer,
              progress: Callable[[str], None] | None, decoding: str = CHAT_DECODING) -> list[Conversation]:
    """The base model's usable answers to the prompts ({"id", "prompt"}) of `groups`, in order; each
    group is cached on its own, and the groups missing from the cache are answered in one call (one
    length-sorted batch run). A group's key is its prompts, so groups must not depend on the job's size."""
    prompts = [p for group in groups for p in group]
    budget = REPLAY_MAX_NEW_TOKENS if decoding == CHAT_DECODING else COMPLETION_MAX_NEW_TOKENS
    chunks = [(chunk, {"prompts": [[p["id"], p["prompt"]] for p in chunk], "max_new_tokens": budget,
                       "decoding": decoding}) for chunk in groups]
    found = {i: cache.get("replay", payload) if cache is not None else None for i, (_, payload) in enumerate(chunks)}
    missing = [i for i, answers in found.items() if answers is None]
    if missing:
        asked = [p for i in missing for p in chunks[i][0]]
        if progress:
            progress(f"answering {len(asked)} general prompts with the base model (once per base model)")
        generations = iter(answer([[{"role": "user", "content": p["prompt"]}] for p in asked]))
        for i in missing:
            chunk, payload = chunks[i]
            found[i] = [{"id": p["id"], "answer": g.text, "ended": g.ended_cleanly}
                        for p, g in zip(chunk, generations)]
            if cache is not None:
                cache.put("replay", payload, found[i])
    cached = {a["id"]: a for answers in found.values() for a in answers}
    return [[{"role": "user", "content": p["prompt"]}, {"role": "assistant", "content": cached[p["id"]]["answer"]}]
            for p in prompts if cached[p["id"]]["ended"] and cached[p["id"]]["answer"].strip()]


def _self_prompted(needed: int, taken: set[str], cache: Any, answer: Answerer, sample: PromptSampler,
                   progress: Callable[[str], None] | None, decoding: str = CHAT_DECODING) -> list[Conversation]:
    """Up to `needed` conversations on prompts the base model wrote, from fixed seeded chunks (a
    larger job extends a smaller one's chunks). Prompts that repeat one already taken or touch a
    held-out eval question are dropped. Chunks are gathered for half again as many prompts as
    needed (some answers run past the token limit) and answered in one call; a second round
    tops up, and a chunk that yields nothing new ends the search.

    Answers are cached per written chunk (in 64-prompt groups of it), never per group of this
    job's list: a job of another size then finds every chunk an earlier job answered (measured on
    the H200: a second, smaller job re-answered 143 prompts, 97 s before its first step)."""
    seen = {normalized(t) for t in taken}
    out: list[Conversation] = []
    number, most = 0, 4 * math.ceil(needed / SELF_PROMPT_CHUNK) + 1
    while len(out) < needed and number < most:
        fresh: list[list[dict[str, Any]]] = []  # one list per written chunk
        while sum(map(len, fresh)) < 1.5 * (needed - len(out)) and number < most:
            chunk = _self_prompt_chunk(number, cache, sample, progress)
            new = []
            for index, prompt in enumerate(chunk):
                if normalized(prompt) not in seen:
                    seen.add(normalized(prompt))
                    new.append({"id": f"sp{number:03d}-{index:03d}", "prompt": prompt})
            number += 1
            if not new:
                number = most
            fresh.append(new)
        out += _answered([group for chunk in fresh for group in _chunks(chunk)], cache, answer, progress, decoding)
    return out[:needed]


def _self_prompt_chunk(number: int, cache: Any, sample: PromptSampler, progress: Callable[[str], None] | None
                       ) -> list[str]:
    from graphtune.tools.training.general_ability import touches_held_out

    payload = {"chunk": number, "size": SELF_PROMPT_CHUNK, "seed": REPLAY_SEED + number, "version": SELF_PROMPT_VERSION}
    prompts = cache.get("self_prompts", payload) if cache is not None else None
    if prompts is None:
        if progress:
            progress(f"writing {SELF_PROMPT_CHUNK} general prompts with the base model (once per base model)")
        prompts = [p for p in sample(SELF_PROMPT_CHUNK, REPLAY_SEED + number) if not touches_held_out(p)]
        if cache is not None:
            cache.put("self_prompts", payload, prompts)
    return prompts


def _chunks(prompts: list[dict[str, Any]], size: int = 64) -> list[list[dict[str, Any]]]:
    """Fixed 64-prompt chunks of the fixed order: each is cached on its own, so a job that needs
    more prompts than an earlier one answers only the chunks it adds."""
    return [prompts[i:i + size] for i in range(0, len(prompts), size)]
