"""Padding-free packing into token-budget micro-batches.

Each micro-batch is one row of concatenated examples; position ids restart at 0 for every
example, which transformers turns into a per-document (block-diagonal causal) attention
mask, so examples never attend to each other. No pad token is ever computed on. With a shared
prefix (shared_prefix.py) the row starts with one copy of the prefix the marked examples share,
and the trainer builds the mask from the row's document ids instead.
"""

from __future__ import annotations

import random
from typing import Any

from graphtune.tools.training.shared_prefix import DOCUMENTS_KEY, PREFIX_DOCUMENT, prefix_length
from graphtune.tools.training.tokenize import Example


def plan_batches(lengths: list[int], *, max_tokens: int, max_examples: int, seed: int, shuffle: bool = True) -> list[list[int]]:
    """Group example indices into micro-batches of at most max_tokens tokens / max_examples examples.

    Examples are shuffled (seeded), then placed first-fit into a small window of open batches,
    which fills batches well without sorting by length (sorting would bias each step).
    """
    order = list(range(len(lengths)))
    if shuffle:
        random.Random(seed).shuffle(order)
    batches: list[list[int]] = []
    open_batches: list[tuple[int, list[int]]] = []  # (tokens used, indices)
    window = 8
    for idx in order:
        size = min(lengths[idx], max_tokens)
        for slot, (used, members) in enumerate(open_batches):
            if used + size <= max_tokens and len(members) < max_examples:
                members.append(idx)
                open_batches[slot] = (used + size, members)
                break
        else:
            open_batches.append((size, [idx]))
            if len(open_batches) > window:
                batches.append(open_batches.pop(0)[1])
    batches += [members for _, members in open_batches]
    return batches


REPLAY_MASK_KEY = "graphtune_replay_mask"
BLOCK_TOKENS = 128  # flex_attention's block: compiled rows are padded onto this grid (engine, replay_kl)


def round_up(tokens: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that holds `tokens`."""
    return -(-tokens // multiple) * multiple


def collate_packed(examples: list[Example], pad_to: int | None = None, replay_mask: bool = False,
                   share_prefix: bool = False) -> dict[str, Any]:
    """One packed row: input_ids, position_ids (restarting per example), labels (no cross-example loss).

    `pad_to`: fill the row up to this many tokens with one padding "document" (its own positions,
    no labels), so every step has the same shape and compiled kernels (flex_attention's block
    mask) are built once instead of once per new row length.

    `replay_mask`: add REPLAY_MASK_KEY, True on the labelled tokens of replay examples (popped by
    the trainer before the forward; see replay_kl.py).

    `share_prefix`: one copy of the marked examples' shared prefix at the row start; each marked
    example keeps its tokens after it, positions continuing at the prefix length; DOCUMENTS_KEY
    holds the per-token document ids the attention mask is built from (shared_prefix.py)."""
    import torch

    prefix = prefix_length(examples) if share_prefix else 0
    lead = next((ex for ex in examples if ex.shared_prefix), None) if prefix else None
    ids, pos, labels, replay, docs = [], [], [], [], []
    if lead is not None:
        ids += lead.input_ids[:prefix]
        pos += range(prefix)
        labels += [-100] * prefix
        replay += [False] * prefix
        docs += [PREFIX_DOCUMENT] * prefix
    for number, ex in enumerate(examples, start=1):
        skip = prefix if ex.shared_prefix else 0
        ids += ex.input_ids[skip:]
        pos += range(skip, len(ex.input_ids))
        own = [-100] + ex.labels[skip + 1:]  # the first token of an example never predicts from the previous one
        labels += own
        replay += [ex.replay and label != -100 for label in own]
        docs += [number if skip else -number] * len(own)
    if pad_to and len(ids) < pad_to:
        fill = pad_to - len(ids)
        ids += [0] * fill
        pos += range(fill)
        labels += [-100] * fill
        replay += [False] * fill
        docs += [-(len(examples) + 1)] * fill
    as_tensor = lambda values: torch.tensor([values], dtype=torch.long)  # noqa: E731
    batch = {"input_ids": as_tensor(ids), "position_ids": as_tensor(pos), "labels": as_tensor(labels)}
    if share_prefix:  # every row of a sharing run carries its documents: one mask function for all steps
        batch[DOCUMENTS_KEY] = as_tensor(docs)
    if replay_mask and any(replay):  # no key, no teacher forward (and no device sync to find that out)
        batch[REPLAY_MASK_KEY] = torch.tensor([replay], dtype=torch.bool)
    return batch


def collate_padded(examples: list[Example], pad_id: int, replay_mask: bool = False) -> dict[str, Any]:
    """Classic right-padded batch (used when packing is off, and by the packed==unpacked check)."""
    import torch

    width = max(len(e) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for row, ex in enumerate(examples):
        n = len(ex)
        ids[row, :n] = torch.tensor(ex.input_ids)
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(ex.labels)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if replay_mask and any(ex.replay for ex in examples):
        batch[REPLAY_MASK_KEY] = (labels != -100) & torch.tensor([[ex.replay] for ex in examples], dtype=torch.bool)
    return batch


def label_tokens(batch: dict[str, Any]) -> int:
    """Tokens that carry loss (shifted labels != -100)."""
    return int((batch["labels"][..., 1:] != -100).sum())
