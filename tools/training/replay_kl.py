"""A KL(base || tuned) term on the answer tokens of general-replay rows.

Why: replaying the base model's greedy answers teaches one token per position; the forgetting
that matters is the drift of the whole next-token distribution (RL's Razor, 2509.04259: it tracks
KL to the base; GKD and distillation use the teacher's full distribution). With LoRA the base
model is the same network with the adapter switched off.

The base model's side is computed once, at the first step (teacher_states.py: its final hidden
states at every replay answer position, gathered per batch on the host), not per step: it never
changes, and each replay row is the same in every epoch. The output layer is applied here, at
step time, to both sides, so the term is the full-vocabulary KL, not an approximation.

The student's logits are never materialized for the whole row (the fused cross-entropy avoids
that): the final hidden states are caught with a forward hook on the decoder, and only the
replay positions go through the output layer, in chunks whose logits are recomputed in backward
(torch.utils.checkpoint), so memory stays at one chunk of vocab-sized rows.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

CHUNK_POSITIONS = 2048


def _base(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


@contextmanager
def final_hidden_states(model: Any) -> Iterator[dict[str, Any]]:
    """Catch the decoder's last hidden state (after its final norm) during one forward."""
    caught: dict[str, Any] = {}

    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        caught["hidden"] = output[0] if isinstance(output, tuple) else output.last_hidden_state

    handle = _base(model).get_decoder().register_forward_hook(hook)
    try:
        yield caught
    finally:
        handle.remove()


def predicting_positions(replay_mask: Any) -> Any:
    """Flat indices of the positions whose next token is a replay answer token (logits at t
    predict the token at t+1), over the (batch, length) layout flattened row by row."""
    import torch

    shifted = torch.zeros_like(replay_mask)
    shifted[:, :-1] = replay_mask[:, 1:]
    return shifted.reshape(-1).nonzero().squeeze(-1)


def kl_to_base(model: Any, student_hidden: Any, positions: Any, teacher_hidden: Any) -> tuple[Any, int]:
    """(sum over replay positions of KL(base || tuned) of the next-token distributions, positions).

    `model` is the PEFT model (its output layer is the base model's), `student_hidden` the final
    hidden states caught by `final_hidden_states` during the student's forward, `positions` the flat
    indices (row by row) of the positions that predict a replay answer token (`predicting_positions`),
    and `teacher_hidden` the base model's final hidden states at those positions, in that order
    (teacher_states.py)."""
    import torch
    from torch.utils.checkpoint import checkpoint

    count = int(positions.numel())  # a shape: no device sync
    if count == 0:
        return student_hidden.sum() * 0.0, 0
    if teacher_hidden.shape[0] != count:
        raise ValueError(f"{teacher_hidden.shape[0]} teacher states for {count} replay positions")
    head = _base(model).get_output_embeddings()
    student = student_hidden.reshape(-1, student_hidden.shape[-1]).index_select(0, positions)
    teacher_hidden = teacher_hidden.to(student.dtype)

    def chunk_kl(student_chunk: Any, teacher_chunk: Any) -> Any:
        log_q = torch.log_softmax(head(student_chunk).float(), dim=-1)
        with torch.no_grad():
            log_p = torch.log_softmax(head(teacher_chunk).float(), dim=-1)
        return (log_p.exp() * (log_p - log_q)).sum()

    total = student_hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, count, CHUNK_POSITIONS):
        part = slice(start, start + CHUNK_POSITIONS)
        total = total + checkpoint(chunk_kl, student[part], teacher_hidden[part], use_reentrant=False)
    return total, count
