"""One copy per packed row of the opening the chat template writes into every conversation.

Why: SmolLM2-Instruct's chat template puts its default system prompt into every conversation that
has none: 21 of the 85.8 tokens of an average `email` knowledge row (22 %, bench/README). Packed rows
computed that prompt once per document, forward and backward, and it filled a fifth of each token
budget. Dropping it would change what the model sees at inference, where the template adds it too.

How: `template_opening` renders a probe conversation (one user message, no system message) and keeps
the tokens the template writes before the message. `mark_examples` marks each example whose token ids
start with them and extends the prefix to the longest one all marked examples share (the user turn's
header too), never up to a labelled token. A packed row (packing.collate_packed with share_prefix)
then holds one copy of the prefix at its start (positions 0..P-1); each marked document keeps only its
tokens after the prefix, with positions continuing at P (RoPE sees the positions of the unshared
document); other examples are packed as before. Per-token document ids (DOCUMENTS_KEY: 0 the prefix,
> 0 a document that sees it, < 0 one that does not) become the attention mask: a token attends
causally within its own document and, in a marked document, to the prefix. The rows hold the examples
the unshared plan put there (engine.make_plan plans on full lengths): only the computed row, and on
CUDA the one length rows are padded to (engine.padded_row_tokens), get shorter. Off by default
(the `shared_prefix` setting) until measured on a GPU.

Why it is exact: a prefix token attends only to earlier prefix tokens, so the shared copy has the
hidden states, keys and values of every per-document copy; a marked document's token attends to the
same keys and values at the same positions as in its unshared row; the prefix and the first token
after it carry no labels, so the loss has the same terms; and the gradient reaching the shared copy
is the sum of those that reached each copy. Only floating-point summation order differs.

Where: flex_attention (CUDA; a BlockMask) and sdpa (CPU, MPS, and CUDA after a flex fallback; the
same mask as a dense boolean (rows, 1, L, L) tensor, the size transformers builds for packed rows
itself). transformers 5.17 and 5.24 pass a 4-D mask or BlockMask to the attention unchanged
(masking_utils._preprocess_mask_arguments returns it before looking at position ids). Any other
attention implementation raises: a wrong mask would silently train on something else.
"""

from __future__ import annotations

from typing import Any, Callable

from graphtune.tools.errors import TrainingConfigError
from graphtune.tools.training.tokenize import Example

DOCUMENTS_KEY = "graphtune_documents"  # per-token document ids of a shared-prefix row (popped before the forward)
SAVED_TOKENS_KEY = "graphtune_shared_saved_tokens"  # tokens the row would hold without sharing, minus its own
PREFIX_DOCUMENT = 0
ATTENTION = ("flex_attention", "sdpa")  # the implementations that take the mask (module docstring)
_PROBE = "GRAPHTUNE_SHARED_PREFIX_PROBE"


def template_opening(tokenizer: Any) -> list[int]:
    """Token ids the chat template writes before the first user message of a conversation without a
    system message (SmolLM2: its default system block and `<|im_start|>user\\n`), minus the last one:
    that token may merge with a message's first characters, and the dataset's own common prefix
    (mark_examples) takes back what is really shared. [] when the template cannot render the probe."""
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": _PROBE}], tokenize=False)
    except Exception:  # noqa: BLE001 - a template that refuses this shape: nothing is shared
        return []
    if not isinstance(text, str) or _PROBE not in text:
        return []
    head = text.split(_PROBE, 1)[0]
    ids = tokenizer(head, add_special_tokens=False)["input_ids"] if head else []
    return list(ids[:-1])


def _first_label(example: Example) -> int:
    """Index of the first labelled token (index 0 is never a target in a packed row)."""
    return next((i for i in range(1, len(example)) if example.labels[i] != -100), len(example))


def _common_length(candidates: list[Example]) -> int:
    """The longest token prefix all candidates share that ends before each one's first labelled token
    (so neither the prefix nor the token after it is a target)."""
    if not candidates:
        return 0
    first = candidates[0].input_ids
    length = len(first)
    for example in candidates:
        length = min(length, _first_label(example) - 1)
        ids, k = example.input_ids, 0
        while k < length and ids[k] == first[k]:
            k += 1
        length = k
    return max(length, 0)


def mark_examples(examples: list[Example], opening: list[int]) -> dict[str, Any]:
    """Set `shared_prefix` on the examples that start with the template's opening (0 on the others)
    and report what is shared: the prefix length, how many examples carry it, and its share of the
    examples' tokens (what one copy per document cost)."""
    n = len(opening)
    marked = [bool(n) and example.input_ids[:n] == opening for example in examples]
    length = _common_length([e for e, m in zip(examples, marked) if m])
    for example, is_marked in zip(examples, marked):
        example.shared_prefix = length if is_marked and length else 0
    count = sum(marked) if length else 0
    total = sum(len(e) for e in examples)
    return {"prefix_tokens": length, "examples": count, "of_examples": len(examples),
            "prefix_share_of_tokens": round(count * length / total, 4) if total else 0.0}


def prefix_length(examples: list[Example]) -> int:
    """The prefix the marked examples share (0 when none is marked)."""
    lengths = {getattr(e, "shared_prefix", 0) for e in examples} - {0}
    if len(lengths) > 1:
        raise ValueError(f"examples marked with different shared prefixes: {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def row_length(examples: list[Example], shared: bool) -> int:
    """Tokens of the packed row of `examples` (before padding): with sharing, the prefix once and
    each marked example's tokens after it."""
    total = sum(len(e) for e in examples)
    if not shared:
        return total
    prefix = prefix_length(examples)
    marked = sum(1 for e in examples if getattr(e, "shared_prefix", 0))
    return total - prefix * marked + (prefix if marked else 0)


def document_mask_mod(documents: Any) -> Callable[[Any, Any, Any, Any], Any]:
    """flex_attention's mask_mod over per-token document ids (rows, L): causal within a document, and
    a token of a document with id > 0 also sees the prefix (id 0). Written with indexing and
    comparisons only, so it also evaluates on broadcast index grids (the dense sdpa mask)."""
    def mask_mod(b: Any, h: Any, q: Any, kv: Any) -> Any:  # noqa: ARG001 - flex's signature
        dq, dk = documents[b, q], documents[b, kv]
        return (kv <= q) & ((dq == dk) | ((dk == PREFIX_DOCUMENT) & (dq > PREFIX_DOCUMENT)))
    return mask_mod


def attention_implementation(model: Any) -> str | None:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base.config, "_attn_implementation", None)


def attention_mask(model: Any, documents: Any) -> Any:
    """The attention mask of a shared-prefix row for `model`'s attention implementation: a BlockMask
    for flex_attention (built compiled on CUDA, as transformers builds its own; on CPU, where rows are
    short, by evaluating the mask), a dense boolean (rows, 1, L, L) mask for sdpa."""
    import torch

    implementation = attention_implementation(model)
    mask_mod = document_mask_mod(documents)
    rows, length = documents.shape
    device = documents.device
    if implementation == "flex_attention":
        from torch.nn.attention.flex_attention import create_block_mask

        return create_block_mask(mask_mod, rows, None, length, length, device=device,
                                 _compile=device.type == "cuda")
    if implementation == "sdpa":
        positions = torch.arange(length, device=device)
        return mask_mod(torch.arange(rows, device=device)[:, None, None, None], None,
                        positions[None, None, :, None], positions[None, None, None, :])
    raise TrainingConfigError(f"a shared prefix needs flex_attention or sdpa attention; this model uses "
                              f"{implementation!r}.", field="shared_prefix", hint="Pass shared_prefix=false.")
