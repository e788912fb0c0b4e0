"""A KL(base || tuned) term on the answer tokens of general-replay rows.

Why: replaying the base model's greedy answers teaches one token per position; the forgetting
that matters is the drift of the whole next-token distribution (RL's Razor, 2509.04259: it tracks
KL to the base; GKD and distillation use the teacher's full distribution). With LoRA the base
model is the same network with the adapter switched off, so the teacher costs one extra forward
without gradients and no second copy of the weights.

The teacher sees only the replay documents (~20 % of a packed row): they are gathered whole, with
their own position ids, into a shorter row. Attention is per document (position ids restarting
per document), so each gathered document gets exactly the hidden states it has in the full row,
and the teacher's forward costs a fifth of a full-row one. In a shared-prefix row (shared_prefix.py)
the documents are the row's explicit document ids, and the prefix comes along (first, as in the
row) whenever a gathered document sees it, under the same kind of mask as the student's.

The student's logits are never materialized for the whole row (the fused cross-entropy avoids
that): the final hidden states are caught with a forward hook on the decoder, and only the
replay positions go through the output layer, in chunks whose logits are recomputed in backward
(torch.utils.checkpoint), so memory stays at one chunk of vocab-sized rows.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from graphtune.tools.training.compiled_layers import eager_layers
from graphtune.tools.training.packing import BLOCK_TOKENS, round_up
from graphtune.tools.training.shared_prefix import DOCUMENTS_KEY, PREFIX_DOCUMENT, attention_mask

CHUNK_POSITIONS = 2048
BUCKETS_PER_ROW = 8

# (model, inputs, replay_mask, predicting positions) -> the base model's final hidden states at those positions
Teacher = Callable[[Any, dict[str, Any], Any, Any], Any]


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


def teacher_length(tokens: int, row_tokens: int) -> int:
    """Length of the teacher's row for `tokens` gathered replay tokens out of a `row_tokens` row.

    flex_attention compiles its kernels and block mask per row length, and the gathered length
    changes every step. It is rounded up to a multiple of 1/8 of the student's row, at most the row
    itself rounded up to the 128-token block grid (a padded batch without packing need not be on
    it; a packed row always is): at most 8 shapes in a whole run, whatever the
    replay share, all on the block grid (an off-grid length is what inductor fails to compile for
    some shapes), padding under 1/8 of a row (6,144 tokens of a 49,152-token row; a row holds ~10k
    replay tokens). One fixed length (the whole row) would give the saving back; powers of two
    times 128 would give about as few shapes but pad up to 2x."""
    step = round_up(-(-row_tokens // BUCKETS_PER_ROW), BLOCK_TOKENS)
    return min(round_up(tokens, step), round_up(max(row_tokens, tokens), BLOCK_TOKENS))


def _document_ids(inputs: dict[str, Any]) -> Any:
    """Per token (flattened row by row), the document it belongs to, numbered across rows; -1 on
    padding (attention_mask 0). A new document starts where position ids do not step by one:
    transformers' own rule for the per-document mask of packed rows (find_packed_sequence_indices).
    A shared-prefix row (one packed row) carries its document ids instead: its position ids do not
    restart at 0 after the prefix."""
    import torch
    from transformers.masking_utils import find_packed_sequence_indices

    if inputs.get(DOCUMENTS_KEY) is not None:
        return inputs[DOCUMENTS_KEY].reshape(-1)
    ids = inputs["input_ids"]
    rows, width = ids.shape
    position_ids = inputs.get("position_ids")
    within = find_packed_sequence_indices(position_ids) if position_ids is not None else None
    row_start = torch.arange(rows, device=ids.device)[:, None] * width
    docs = (torch.zeros_like(ids) if within is None else within) + row_start
    mask = inputs.get("attention_mask")
    return (docs if mask is None else docs.masked_fill(mask == 0, -1)).reshape(-1)


def _replay_document_tokens(inputs: dict[str, Any], replay_mask: Any) -> Any:
    """Flat indices, in order, of every token of every document that holds a replay answer token
    (and of the shared prefix, when one of those documents sees it)."""
    import torch

    docs = _document_ids(inputs)
    offset = docs.numel() + 2  # document ids lie in (-offset, offset): shifted, they index `wanted`
    wanted = torch.zeros(2 * offset, dtype=torch.bool, device=docs.device)
    wanted[docs[replay_mask.reshape(-1).to(docs.device)] + offset] = True
    kept = wanted[docs + offset]
    if inputs.get(DOCUMENTS_KEY) is not None:
        kept |= (docs == PREFIX_DOCUMENT) & (kept & (docs > PREFIX_DOCUMENT)).any()
    return kept.nonzero().squeeze(-1)


def teacher_row(inputs: dict[str, Any], replay_mask: Any, bucket: bool) -> tuple[dict[str, Any], Any]:
    """The batch's replay documents as one packed row (input_ids, position_ids, and the document ids
    of a shared-prefix row) and, per flat token of the batch, its index in that row. `bucket`: pad
    the row to `teacher_length` with one padding document (its own position ids, never read back)."""
    import torch

    kept = _replay_document_tokens(inputs, replay_mask)
    ids = inputs["input_ids"]
    positions = inputs.get("position_ids")
    if positions is None:  # right-padded rows: the model numbers each row from 0
        positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
    fill = (teacher_length(kept.numel(), ids.numel()) if bucket else kept.numel()) - kept.numel()
    row_ids = torch.cat([ids.reshape(-1)[kept], ids.new_zeros(fill)])
    row_positions = torch.cat([positions.reshape(-1)[kept], torch.arange(fill, device=ids.device)])
    where = torch.full((ids.numel(),), -1, dtype=torch.long, device=ids.device)
    where[kept] = torch.arange(kept.numel(), device=ids.device)
    row = {"input_ids": row_ids[None], "position_ids": row_positions[None]}
    documents = inputs.get(DOCUMENTS_KEY)
    if documents is not None:  # the padding document's id is below every id of the row
        padding = torch.full((fill,), -ids.numel() - 2, dtype=documents.dtype, device=ids.device)
        row[DOCUMENTS_KEY] = torch.cat([documents.reshape(-1)[kept], padding])[None]
    return row, where


def _compiled_per_shape(model: Any) -> bool:
    """flex_attention compiles per row length (sdpa on CPU/MPS does not need buckets)."""
    return getattr(_base(model).config, "_attn_implementation", None) == "flex_attention"


def replay_teacher_hidden(model: Any, inputs: dict[str, Any], replay_mask: Any, positions: Any,
                          bucket: bool | None = None) -> Any:
    """The base model's final hidden states at `positions` (flat student indices), from a forward
    over the replay documents only. `bucket`: None = when the attention compiles per shape."""
    import torch

    row, where = teacher_row(inputs, replay_mask, _compiled_per_shape(model) if bucket is None else bucket)
    documents = row.pop(DOCUMENTS_KEY, None)
    if documents is not None:
        row["attention_mask"] = attention_mask(model, documents)
    with torch.no_grad(), model.disable_adapter(), eager_layers(model):  # the row's length varies: no recompiles
        hidden = _base(model).get_decoder()(**row, use_cache=False)[0]
    return hidden[0].index_select(0, where[positions])


def kl_to_base(model: Any, inputs: dict[str, Any], student_hidden: Any, replay_mask: Any,
               teacher: Teacher = replay_teacher_hidden) -> tuple[Any, int]:
    """(sum over replay positions of KL(base || tuned) of the next-token distributions, positions).

    `model` is the PEFT model (its adapter is switched off for the teacher's forward), `inputs`
    the batch the student saw (labels are not used), `student_hidden` the hidden states caught by
    `final_hidden_states` during the student's forward. `teacher`: how the base model's hidden
    states are computed (the tests pass the full-row forward this replaced, as the reference)."""
    import torch
    from torch.utils.checkpoint import checkpoint

    replay_mask = replay_mask.to(student_hidden.device)
    positions = predicting_positions(replay_mask)
    if positions.numel() == 0:
        return student_hidden.sum() * 0.0, 0
    head = _base(model).get_output_embeddings()
    student = student_hidden.reshape(-1, student_hidden.shape[-1]).index_select(0, positions)
    teacher_hidden = teacher(model, inputs, replay_mask, positions)

    def chunk_kl(student_chunk: Any, teacher_chunk: Any) -> Any:
        log_q = torch.log_softmax(head(student_chunk).float(), dim=-1)
        with torch.no_grad():
            log_p = torch.log_softmax(head(teacher_chunk).float(), dim=-1)
        return (log_p.exp() * (log_p - log_q)).sum()

    total = student_hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, positions.numel(), CHUNK_POSITIONS):
        part = slice(start, start + CHUNK_POSITIONS)
        total = total + checkpoint(chunk_kl, student[part], teacher_hidden[part], use_reentrant=False)
    return total, int(positions.numel())
