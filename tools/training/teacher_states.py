"""The base model's final hidden states at every replay answer position, computed once per training run.

Why: the KL-to-base term (replay_kl.py) compares the tuned model's next-token distribution with the
base model's at each replay answer token. Until the twelfth session the base model's side was a
second forward in every step (the adapter off, eagerly, over the step's replay documents), and
finding those documents cost device syncs: on one H200 a SmolLM2-135M knowledge step took 0.34 s
with the term and 0.19 s without it, the GPU busy 64 % of the time (bench/RESULTS.md). But the base
model never changes during training and a replay row is the same in every epoch, so its states are
computed once, in one no-grad pass over the distinct replay examples, and each step reads its rows.

Exactness: a packed row's attention is per document, so an example's states do not depend on the
row it is packed into; the output layer is still applied at step time to both sides, so the term is
the same full-vocabulary KL as before (only bf16 rounding differs: the pass runs uncompiled, with sdpa).

Cost: hidden size x 2 bytes (bf16; 4 in fp32 on a CPU) per replay answer token, kept in host memory
(pinned on CUDA) and copied per step beside the batch: 345 MiB for SmolLM2-135M and `email`'s 3,268
replay rows, about 7x that for a 4096-wide model; each rank keeps only the rows of the micro-batches
it trains. The pass runs at the first step, inside the trainer, where the model is on its device. Not
under FSDP: the decoder and output layer read here are sharded outside the model's forward there
(config.check_kl_strategy refuses the term).
"""

from __future__ import annotations

from typing import Any

from graphtune.tools.training.compiled_layers import sdpa_attention
from graphtune.tools.training.packing import REPLAY_MASK_KEY, collate_packed
from graphtune.tools.training.replay_kl import predicting_positions
from graphtune.tools.training.tokenize import Example

ROW_TOKENS = 8192  # tokens per packed row of the one-time pass (uncompiled: any length works)


def answer_positions(example: Example) -> int:
    """How many positions of `example` the KL term reads: a replay example's answer tokens."""
    return example.answer_tokens if example.replay else 0


def replay_examples(batches: list[list[Example]], rank: int = 0, world_size: int = 1) -> list[Example]:
    """The distinct replay examples with answer tokens of the micro-batches this rank trains (under
    torchrun rank r takes the micro-batches r, r + world_size, ...: engine.split_to_multiple), in order of
    first appearance."""
    seen: dict[int, Example] = {}
    for batch in batches[rank::world_size]:
        for example in batch:
            if example.replay and id(example) not in seen and answer_positions(example):
                seen[id(example)] = example
    return list(seen.values())


def _rows(examples: list[Example], row_tokens: int) -> list[list[Example]]:
    rows: list[list[Example]] = [[]]
    used = 0
    for example in examples:
        if rows[-1] and used + len(example) > row_tokens:
            rows.append([])
            used = 0
        rows[-1].append(example)
        used += len(example)
    return [row for row in rows if row]


class TeacherStates:
    """Per replay example (by identity), its rows in one host tensor of final hidden states."""

    def __init__(self, states: Any, spans: dict[int, tuple[int, int]]) -> None:
        self.states, self.spans = states, spans

    @classmethod
    def compute(cls, model: Any, examples: list[Example], device: Any, row_tokens: int = ROW_TOKENS) -> "TeacherStates":
        """One no-grad forward of the base model (adapter off) over `examples`, packed into rows of
        at most `row_tokens` tokens; keeps the states at each example's answer-predicting positions."""
        import torch

        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        total = sum(answer_positions(example) for example in examples)
        states, spans, start = None, {}, 0
        was_training = model.training
        model.eval()  # no dropout frozen into the states (the models trained here have none; others may)
        try:
            with torch.no_grad(), model.disable_adapter(), sdpa_attention(model):
                for row in _rows(examples, row_tokens):
                    batch = collate_packed(row, replay_mask=True)
                    mask = batch.pop(REPLAY_MASK_KEY, None)
                    if mask is None:  # no answer token in the row: nothing to keep
                        spans.update((id(example), (start, 0)) for example in row)
                        continue
                    inputs = {key: batch[key].to(device) for key in ("input_ids", "position_ids")}
                    hidden = base.get_decoder()(**inputs, use_cache=False)[0]
                    positions = predicting_positions(mask)  # host tensors: no device sync to find them
                    kept = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions.to(hidden.device))
                    if states is None:  # one host tensor, filled row by row (no second copy to join or pin)
                        states = torch.empty((total, kept.shape[-1]), dtype=kept.dtype, pin_memory=_on_cuda(device))
                    states[start:start + kept.shape[0]].copy_(kept)
                    for example in row:
                        spans[id(example)] = (start, answer_positions(example))
                        start += spans[id(example)][1]
        finally:
            model.train(was_training)
        if start != total or (states is not None and states.shape[0] != total):
            raise AssertionError(f"{start} teacher states for {total} replay answer positions")
        if states is None:
            states = torch.empty(0, 0)
        return cls(states, spans)

    def covering(self, model: Any, members: list[Example], device: Any, row_tokens: int = ROW_TOKENS
                 ) -> "TeacherStates":
        """These states, or, when a batch holds replay examples they lack (a micro-batch outside the
        share this rank expected), these plus the missing ones' (one more pass, this rank alone)."""
        import torch

        missing = list({id(m): m for m in members if id(m) not in self.spans and answer_positions(m)}.values())
        if not missing:
            return self
        more = TeacherStates.compute(model, missing, device, row_tokens)
        offset = int(self.states.shape[0])
        joined = more.states if offset == 0 else torch.cat([self.states, more.states])
        if _on_cuda(device) and offset:
            joined = joined.pin_memory()
        return TeacherStates(joined, {**self.spans, **{k: (start + offset, count) for k, (start, count)
                                                          in more.spans.items()}})

    def rows_for(self, members: list[Example]) -> Any:
        """Indices into `states` of a batch's replay answer positions, in the batch's order (member by
        member, each example's positions in order: the order of `predicting_positions` over the row)."""
        import torch

        ranges = [torch.arange(start, start + count) for start, count in
                  (self.spans[id(m)] for m in members if id(m) in self.spans)]
        return torch.cat(ranges) if ranges else torch.empty(0, dtype=torch.long)

    def for_batch(self, members: list[Example], device: Any) -> Any:
        """The batch's teacher states on `device` (copied without blocking the host on CUDA)."""
        import torch

        index = self.rows_for(members)
        if not _on_cuda(device):
            return self.states.index_select(0, index).to(device)
        rows = torch.empty((index.numel(), *self.states.shape[1:]), dtype=self.states.dtype, pin_memory=True)
        torch.index_select(self.states, 0, index, out=rows)  # straight into pinned memory: one host copy
        return rows.to(device, non_blocking=True)

    @property
    def nbytes(self) -> int:
        return int(self.states.numel() * self.states.element_size())


def _on_cuda(device: Any) -> bool:
    return str(device).startswith("cuda")
