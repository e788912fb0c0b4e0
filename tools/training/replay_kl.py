"""A KL(base || tuned) term on the answer tokens of general-replay rows.

Why: replaying the base model's greedy answers teaches one token per position; the forgetting
that matters is the drift of the whole next-token distribution (RL's Razor, 2509.04259: it tracks
KL to the base; GKD and distillation use the teacher's full distribution). With LoRA the base
model is the same network with the adapter switched off, so the teacher costs one extra forward
without gradients and no second copy of the weights.

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


def kl_to_base(model: Any, inputs: dict[str, Any], student_hidden: Any, replay_mask: Any) -> tuple[Any, int]:
    """(sum over replay positions of KL(base || tuned) of the next-token distributions, positions).

    `model` is the PEFT model (its adapter is switched off for the teacher's forward), `inputs`
    the batch the student saw (labels are not used), `student_hidden` the hidden states caught by
    `final_hidden_states` during the student's forward."""
    import torch
    from torch.utils.checkpoint import checkpoint

    positions = predicting_positions(replay_mask.to(student_hidden.device))
    if positions.numel() == 0:
        return student_hidden.sum() * 0.0, 0
    base = _base(model)
    head = base.get_output_embeddings()
    forward_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    with torch.no_grad(), model.disable_adapter():
        teacher_hidden = base.get_decoder()(**forward_inputs, use_cache=False)[0]
    width = student_hidden.shape[-1]
    student = student_hidden.reshape(-1, width).index_select(0, positions)
    teacher = teacher_hidden.reshape(-1, width).index_select(0, positions)

    def chunk_kl(student_chunk: Any, teacher_chunk: Any) -> Any:
        log_q = torch.log_softmax(head(student_chunk).float(), dim=-1)
        with torch.no_grad():
            log_p = torch.log_softmax(head(teacher_chunk).float(), dim=-1)
        return (log_p.exp() * (log_p - log_q)).sum()

    total = student_hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, positions.numel(), CHUNK_POSITIONS):
        part = slice(start, start + CHUNK_POSITIONS)
        total = total + checkpoint(chunk_kl, student[part], teacher[part], use_reentrant=False)
    return total, int(positions.numel())
