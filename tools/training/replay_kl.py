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
replay positions go through the output layer, in chunks, so memory stays at one chunk of
vocab-sized rows. Each chunk's gradient is computed in the forward (`_ChunkedKL`: the term's
gradient with respect to the student's logits is softmax(student) - softmax(base)), the way
Liger's fused linear cross-entropy does, so backward only scales it: no second pass over the
logits. With the logits recomputed in backward instead (torch.utils.checkpoint, until the
thirteenth session) the term cost ~23 ms of a 0.216 s SmolLM2-135M step on an H200
(bench/RESULTS.md). An output layer that is not a plain bias-free linear map, or one that trains,
keeps that checkpointed path (`_checkpointed_kl`).
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
    count = int(positions.numel())  # a shape: no device sync
    if count == 0:
        return student_hidden.sum() * 0.0, 0
    if teacher_hidden.shape[0] != count:
        raise ValueError(f"{teacher_hidden.shape[0]} teacher states for {count} replay positions")
    head = _base(model).get_output_embeddings()
    student = student_hidden.reshape(-1, student_hidden.shape[-1]).index_select(0, positions)
    teacher_hidden = teacher_hidden.to(student.dtype)
    if _plain_frozen_linear(head):
        return _ChunkedKL.apply(student, teacher_hidden, head.weight), count
    return _checkpointed_kl(head, student, teacher_hidden), count


def _plain_frozen_linear(head: Any) -> bool:
    """The output layer is `x @ W.T` with W not trained (a LoRA run's), and nothing hooks or replaces its
    forward (an accelerate offload hook, a user's hook): what `_ChunkedKL` computes without calling it."""
    import torch

    return (isinstance(head, torch.nn.Linear) and type(head).forward is torch.nn.Linear.forward
            and "forward" not in vars(head) and not head._forward_hooks and not head._forward_pre_hooks
            and head.bias is None and not head.weight.requires_grad)


def _logits(hidden: Any, weight: Any) -> Any:
    """float32 logits of a chunk; from the low-precision product itself where torch offers it (CUDA),
    else the rounded product cast up (the checkpointed path's values)."""
    import torch

    if hidden.is_cuda and hidden.dtype in (torch.bfloat16, torch.float16) and weight.dtype == hidden.dtype:
        try:
            return torch.mm(hidden, weight.t(), out_dtype=torch.float32)
        except torch.OutOfMemoryError:
            raise
        except (TypeError, RuntimeError, NotImplementedError):  # a torch or GPU without mm's out_dtype
            pass
    return (hidden @ weight.t()).float()


def _make_chunked_kl() -> Any:
    import torch

    class ChunkedKL(torch.autograd.Function):
        """sum over rows of KL(softmax(teacher @ W.T) || softmax(student @ W.T)), chunk by chunk, with the
        gradient for `student` computed on the way (d/d logits = softmax(student) - softmax(teacher))."""

        @staticmethod
        def forward(ctx: Any, student: Any, teacher: Any, weight: Any) -> Any:  # noqa: ANN401
            total = torch.zeros((), dtype=torch.float32, device=student.device)
            grad = torch.empty_like(student) if student.requires_grad else None
            with torch.autocast(student.device.type, enabled=False):  # the dtypes are chosen here
                for start in range(0, student.shape[0], CHUNK_POSITIONS):
                    part = slice(start, start + CHUNK_POSITIONS)
                    log_q = torch.log_softmax(_logits(student[part], weight), dim=-1)
                    log_p = torch.log_softmax(_logits(teacher[part], weight), dim=-1)
                    p = log_p.exp()
                    total += log_p.sub_(log_q).mul_(p).sum()  # log_p is not needed after this
                    if grad is not None:
                        grad[part] = log_q.exp_().sub_(p).to(student.dtype) @ weight
                    del log_q, log_p, p  # before the next chunk's: one chunk's logits at a time
            ctx.save_for_backward(grad)
            return total

        @staticmethod
        def backward(ctx: Any, grad_total: Any) -> Any:  # noqa: ANN401
            (grad,) = ctx.saved_tensors
            return (None if grad is None else grad * grad_total.to(grad.dtype)), None, None

    return ChunkedKL


class _LazyFunction:
    """The autograd Function, defined at first use: importing this module does not import torch."""

    def __init__(self, make: Any) -> None:
        self.make, self.function = make, None

    def apply(self, *args: Any) -> Any:
        if self.function is None:
            self.function = self.make()
        return self.function.apply(*args)


_ChunkedKL = _LazyFunction(_make_chunked_kl)


def _checkpointed_kl(head: Any, student: Any, teacher_hidden: Any) -> Any:
    """The same sum through any output module, its logits recomputed in backward (memory: one chunk)."""
    import torch
    from torch.utils.checkpoint import checkpoint

    def chunk_kl(student_chunk: Any, teacher_chunk: Any) -> Any:
        log_q = torch.log_softmax(head(student_chunk).float(), dim=-1)
        with torch.no_grad():
            log_p = torch.log_softmax(head(teacher_chunk).float(), dim=-1)
        return (log_p.exp() * (log_p - log_q)).sum()

    total = student.new_zeros((), dtype=torch.float32)
    for start in range(0, student.shape[0], CHUNK_POSITIONS):
        part = slice(start, start + CHUNK_POSITIONS)
        total = total + checkpoint(chunk_kl, student[part], teacher_hidden[part], use_reentrant=False)
    return total
