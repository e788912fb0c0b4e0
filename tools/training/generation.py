"""Shared generation: load a base model (+ optional LoRA adapter) for inference and answer chats.

Used by the `ask` job and by evaluation. Light at import (torch is imported inside functions),
so tool modules may import the names; the heavy work runs only in workers.

    model, tokenizer = load_for_inference("smollm2-135m-instruct", adapter_dir, "auto", settings)
    answers = generate_chat(model, tokenizer, [[{"role": "user", "content": "Hi"}]])
    details = generate_chat_detailed(model, tokenizer, conversations, deadline=time.time() + 60)
    details[0].text, details[0].ended_cleanly, details[0].new_tokens

Decoding is greedy (deterministic), batched with left padding, formatted by the tokenizer's
chat template with `add_generation_prompt=True`, and stops at the template's end-of-turn token
or EOS (`end_of_turn_ids`). Answers are decoded with special tokens stripped, whitespace trimmed.

Speed (the tuned side of a knowledge job's evaluation took ~56 s for SmolLM2-135M on an H200,
~100 ms per decode step: bound by kernel launches, not arithmetic): a PEFT
model's active LoRA is merged into the weights for the call (`lora_merge.merged_lora`: the base
weights are swapped for merged copies and restored untouched, so base answers are unaffected;
quantized bases fall back to the unmerged model), and on CUDA `batch_size=None` sizes the batch by
memory (KV cache bytes per token from the model config) instead of a fixed 128. `max_new_tokens`
may be one budget per conversation: each row stops at its own budget (as if it had been generated
alone with that max_new_tokens), and a batch stops when every row has ended (HF's generate with an
eos_token_id list). A static KV cache / `torch.compile` of the decode step was not adopted:
compiling a 30-layer decoder costs tens of seconds and recompiles per batch shape, more than the
whole evaluation it would speed up, and a static cache without compilation only adds work.
cuDNN's attention is left out of generation (`without_cudnn_attention`): it builds an execution plan
for every new (rows, query, key) shape, and a decode grows the key length by one per step, so a
first evaluation paid ~21 s of plan building (H200: 600 probes 34.5 s cold, 13.6 s warm).

Deadline: `deadline` is a wall-clock time (`time.time()` seconds). It is checked before each
batch and after every decoded token; when it passes, `GenerationTimeout` (code
`generation_timeout`) is raised and its `.partial` list (aligned with the input) holds the
answers that were complete (None for the rest). Callers that want "what is done" catch it and
read `.partial`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from graphtune.tools.errors import GenerationTimeout, TrainingConfigError
from graphtune.tools.training.compiled_layers import without_cudnn_attention


class Generation(NamedTuple):
    text: str  # the assistant's answer: special tokens stripped, whitespace trimmed
    ended_cleanly: bool  # True when the model ended the turn (end-of-turn/EOS) within max_new_tokens
    new_tokens: int  # tokens the model generated, the end-of-turn token included


def inference_device(device: str = "auto") -> str:
    """`auto` -> cuda, mps or cpu (whatever torch sees); an explicit device must be available."""
    from graphtune.tools.training.config import resolve_device

    return resolve_device(device, "lora")


def load_for_inference(base_model: str, adapter_dir: Path | None, device: str, settings: Any) -> tuple[Any, Any]:
    """(model, tokenizer) ready for `generate_chat`: base resolved through `resolve_base_model`
    (built-in name, .gguf, folder or hub id; a GGUF converts once into the cache), the PEFT
    adapter attached when `adapter_dir` is given, eval mode, bf16 on CUDA / fp32 elsewhere, sdpa
    attention, left padding. The adapter folder's tokenizer (saved by the train job, with the
    chat template it trained on) is preferred over the base's."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from graphtune.tools.training.base_models import resolve_base_model
    from graphtune.tools.training.tokenize import ensure_chat_template

    device = inference_device(device)
    base = resolve_base_model(base_model, settings)
    tok_source = str(adapter_dir) if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").is_file() else base
    tokenizer = AutoTokenizer.from_pretrained(tok_source)
    ensure_chat_template(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, attn_implementation="sdpa")
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.to(device)
    model.eval()
    return model, tokenizer


def generate_chat(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], *, max_new_tokens: int = 64,
                  batch_size: int | None = 32, deadline: float | None = None,
                  disable_adapter: bool = False) -> list[str]:
    """The assistant's answer to each conversation (see `generate_chat_detailed`)."""
    return [g.text for g in generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=max_new_tokens,
                                                   batch_size=batch_size, deadline=deadline,
                                                   disable_adapter=disable_adapter)]


def generate_completions(model: Any, tokenizer: Any, prompts: list[str], *, max_new_tokens: int = 64,
                         batch_size: int | None = 32) -> list[Generation]:
    """Greedy plain-text continuations of `prompts` (no chat template; the tokenizer's own special
    tokens, e.g. Gemma's BOS), each ending at its first line break or EOS. For a base model that was
    never taught a chat format (base_style.has_own_chat_template): asked "Question: ...\nAnswer:"
    it answers on one line. Line breaks before any text are skipped (SmolLM2, for one, starts its
    answer on a new line). `ended_cleanly`: a line break after text, or EOS, came within `max_new_tokens`."""
    ids = [tokenizer(p)["input_ids"] for p in prompts]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    if batch_size is None:
        batch_size = auto_batch_size(model, max((len(p) for p in ids), default=1), max_new_tokens)
    stops = line_break_ids(tokenizer)
    results: list[Generation | None] = [None] * len(ids)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        out, _ = _generate_batch(model, tokenizer, [ids[i] for i in batch], [max_new_tokens] * len(batch), None,
                                 line_breaks=stops)
        for i, generation in zip(batch, out):
            results[i] = generation
    return results  # type: ignore[return-value]


def line_break_ids(tokenizer: Any) -> set[int]:
    """Vocabulary ids whose token holds a line break (SentencePiece's literal "\n" or byte <0x0A>,
    byte-level BPE's "Ċ"): reading token strings, not decoding each id (Gemma's 262k: 1.6 s vs 17 s)."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return {i for i, t in enumerate(tokens) if t and ("\n" in t or "Ċ" in t or t == "<0x0A>")}


MERGE_LORA = True  # merge the LoRA for tuned-side generation (the benchmark turns it off to time the old way)
AUTO_BATCH_CAP = 1024  # rows per batch at most on CUDA (a knowledge job's 600 probes fit one batch)
CPU_BATCH = 16  # rows per batch off CUDA when batch_size=None
GENERATION_MEMORY_SHARE = 0.5  # share of the free GPU memory a batch's KV cache and activations may take


def generate_chat_detailed(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], *,
                           max_new_tokens: int | Sequence[int] = 64, batch_size: int | None = 32,
                           deadline: float | None = None, disable_adapter: bool = False,
                           merge: bool | None = None) -> list[Generation]:
    """Greedy answers, in input order, as `Generation(text, ended_cleanly, new_tokens)`.

    `max_new_tokens`: one budget for all, or one per conversation. `batch_size=None`: sized by
    free GPU memory on CUDA (up to AUTO_BATCH_CAP), CPU_BATCH elsewhere. `disable_adapter=True`
    answers with the base model under a PEFT model (one load serves base and tuned); otherwise
    the LoRA is merged for the call when `merge` (default MERGE_LORA) and the model allows it.
    Raises GenerationTimeout (with `.partial`) when `deadline` passes."""
    import contextlib

    from graphtune.tools.training.lora_merge import merged_lora

    budgets = [max_new_tokens] * len(conversations) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(budgets) != len(conversations):
        raise TrainingConfigError("one `max_new_tokens` per conversation is needed.", field="max_new_tokens")
    if any(b < 1 for b in budgets) or (batch_size is not None and batch_size < 1):
        raise TrainingConfigError("`max_new_tokens` and `batch_size` must be at least 1.", field="max_new_tokens")
    prompts = [_prompt_ids(tokenizer, c) for c in conversations]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # similar lengths share a batch
    if batch_size is None:
        batch_size = auto_batch_size(model, max((len(p) for p in prompts), default=1), max(budgets, default=1))
    results: list[Generation | None] = [None] * len(prompts)
    scope: Any = contextlib.nullcontext()
    if disable_adapter and hasattr(model, "disable_adapter"):
        scope = model.disable_adapter()
    elif not disable_adapter and (MERGE_LORA if merge is None else merge):
        scope = merged_lora(model)
    with scope:
        for start in range(0, len(order), batch_size):
            if deadline is not None and time.time() >= deadline:
                raise _timeout(results, len(prompts))
            batch = order[start:start + batch_size]
            out, timed_out = _generate_batch(model, tokenizer, [prompts[i] for i in batch], [budgets[i] for i in batch],
                                             deadline)
            for i, generation in zip(batch, out):
                if not timed_out or generation.ended_cleanly:  # a cut-off answer is not an answer
                    results[i] = generation
            if timed_out:
                raise _timeout(results, len(prompts))
    return results  # type: ignore[return-value]


def kv_bytes_per_token(config: Any, dtype_bytes: int = 2) -> int:
    """Bytes of KV cache one token takes over all layers (keys and values)."""
    config = getattr(config, "text_config", None) or config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * dtype_bytes


def row_bytes(config: Any, prompt_tokens: int, new_tokens: int, dtype_bytes: int = 2) -> int:
    """Peak GPU bytes one row of a generation batch needs: its KV cache at the last step, the
    prefill's activations of one layer (attention scores included, in case sdpa runs its math
    kernel) and the fp32 logits of a step, with a 25 % margin."""
    config = getattr(config, "text_config", None) or config
    kv = kv_bytes_per_token(config, dtype_bytes) * (prompt_tokens + new_tokens)
    hidden, heads = config.hidden_size, config.num_attention_heads
    inter = getattr(config, "intermediate_size", None) or 4 * hidden
    prefill = prompt_tokens * (6 * hidden + 3 * inter) * dtype_bytes + heads * prompt_tokens ** 2 * 4
    logits = 3 * config.vocab_size * 4
    return int(1.25 * (kv + prefill + logits))


def auto_batch_size(model: Any, prompt_tokens: int, new_tokens: int) -> int:
    """Rows per generation batch: what fits GENERATION_MEMORY_SHARE of the free GPU memory,
    rounded down to a power of two (small changes in free memory do not change the batches), at
    most AUTO_BATCH_CAP; CPU_BATCH off CUDA."""
    import torch

    param = next(model.parameters())
    if param.device.type != "cuda":
        return CPU_BATCH
    free, _ = torch.cuda.mem_get_info(param.device)
    free += torch.cuda.memory_reserved(param.device) - torch.cuda.memory_allocated(param.device)
    dtype_bytes = param.element_size() if param.dtype.is_floating_point else 2
    per_row = max(1, row_bytes(model.config, prompt_tokens, new_tokens, dtype_bytes))
    rows = int(GENERATION_MEMORY_SHARE * free) // per_row
    return max(1, min(AUTO_BATCH_CAP, 1 << max(0, rows.bit_length() - 1)))


def _timeout(results: list[Generation | None], total: int) -> GenerationTimeout:
    done = sum(r is not None for r in results)
    return GenerationTimeout(f"generation passed its deadline with {done} of {total} answer(s) complete.",
                             partial=list(results),
                             hint="Allow more time, lower max_new_tokens, or ask fewer prompts at once.")


def _prompt_ids(tokenizer: Any, conversation: list[dict[str, str]]) -> list[int]:
    text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _generate_batch(model: Any, tokenizer: Any, prompts: list[list[int]], budgets: list[int],
                    deadline: float | None, *, line_breaks: set[int] | None = None) -> tuple[list[Generation], bool]:
    """One left-padded greedy batch. With `line_breaks` (token ids), a row also ends at a line-break
    token that follows text; that token is decoded too (it may carry text before the break) and the
    answer is the first line of text."""
    import torch
    from transformers import GenerationConfig, StoppingCriteriaList

    from graphtune.tools.training.tokenize import end_of_turn_ids

    stop_ids = set(end_of_turn_ids(tokenizer))
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    stop_ids |= set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(stop_ids))
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):  # left padding: every prompt ends where generation starts
        input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        mask[row, width - len(ids):] = 1

    criteria, deadline_hit = _stopping(deadline, budgets, width, device, line_breaks)
    config = GenerationConfig(max_new_tokens=max(budgets), do_sample=False, eos_token_id=sorted(stop_ids),
                              pad_token_id=pad, use_cache=True)
    with torch.inference_mode(), without_cudnn_attention():
        out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device), generation_config=config,
                             stopping_criteria=StoppingCriteriaList(criteria))
    generations = []
    for row, budget in zip(out[:, width:].tolist(), budgets, strict=True):
        row = row[:budget]  # past its own budget a row holds padding
        end = next((k for k, t in enumerate(row) if t in stop_ids or _ends_line(row, k, line_breaks)), None)
        tokens = row if end is None else row[:end]
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        if line_breaks and end is not None and row[end] in line_breaks:
            text = tokenizer.decode(row[:end + 1], skip_special_tokens=True).strip().split("\n")[0]
        generations.append(Generation(text.strip(), end is not None, len(tokens) + (end is not None)))
    return generations, deadline_hit()


def _stopping(deadline: float | None, budgets: list[int], width: int, device: Any,
              line_breaks: set[int] | None) -> tuple[list[Any], Callable[[], bool]]:
    """generate's stopping criteria for one batch (each decides per row on the device, no host sync
    per step), and a function that says whether the deadline stopped it."""
    import torch
    from transformers import StoppingCriteria

    class _Deadline(StoppingCriteria):
        hit = False

        def __call__(self, ids: Any, scores: Any, **kwargs: Any) -> Any:
            if deadline is not None and time.time() >= deadline:
                _Deadline.hit = True
                return torch.ones(ids.shape[0], dtype=torch.bool, device=ids.device)
            return torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)

    class _RowBudget(StoppingCriteria):
        """Each row stops at its own max_new_tokens (on the device: no host sync per step)."""

        limit = torch.tensor(budgets, dtype=torch.long, device=device)

        def __call__(self, ids: Any, scores: Any, **kwargs: Any) -> Any:
            return self.limit <= ids.shape[1] - width

    class _LineEnd(StoppingCriteria):
        """A row ends at a line break once it has written something (on the device, no host sync)."""

        breaks = torch.tensor(sorted(line_breaks or ()), dtype=torch.long, device=device)

        def __call__(self, ids: Any, scores: Any, **kwargs: Any) -> Any:
            is_break = torch.isin(ids[:, width:], self.breaks)
            return is_break[:, -1] & (~is_break[:, :-1]).any(dim=1)

    criteria: list[Any] = [_Deadline()]
    if line_breaks:
        criteria.append(_LineEnd())
    if min(budgets) != max(budgets):
        criteria.append(_RowBudget())
    return criteria, lambda: _Deadline.hit


def _ends_line(row: list[int], k: int, line_breaks: set[int] | None) -> bool:
    """Token k is a line break that follows text (as _LineEnd decides on the device)."""
    return bool(line_breaks) and row[k] in line_breaks and any(t not in line_breaks for t in row[:k])  # type: ignore[operator]


