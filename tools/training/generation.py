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

Deadline: `deadline` is a wall-clock time (`time.time()` seconds). It is checked before each
batch and after every decoded token; when it passes, `GenerationTimeout` (code
`generation_timeout`) is raised and its `.partial` list (aligned with the input) holds the
answers that were complete (None for the rest). Callers that want "what is done" catch it and
read `.partial`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

from graphtune.tools.errors import GenerationTimeout, TrainingConfigError


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
                  batch_size: int = 32, deadline: float | None = None, disable_adapter: bool = False) -> list[str]:
    """The assistant's answer to each conversation (see `generate_chat_detailed`)."""
    return [g.text for g in generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=max_new_tokens,
                                                   batch_size=batch_size, deadline=deadline,
                                                   disable_adapter=disable_adapter)]


def generate_chat_detailed(model: Any, tokenizer: Any, conversations: list[list[dict[str, str]]], *,
                           max_new_tokens: int = 64, batch_size: int = 32, deadline: float | None = None,
                           disable_adapter: bool = False) -> list[Generation]:
    """Greedy answers, in input order, as `Generation(text, ended_cleanly, new_tokens)`.

    `disable_adapter=True` answers with the base model under a PEFT model (one load serves
    base and tuned). Raises GenerationTimeout (with `.partial`) when `deadline` passes."""
    import contextlib

    if max_new_tokens < 1 or batch_size < 1:
        raise TrainingConfigError("`max_new_tokens` and `batch_size` must be at least 1.", field="max_new_tokens")
    prompts = [_prompt_ids(tokenizer, c) for c in conversations]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # similar lengths share a batch
    results: list[Generation | None] = [None] * len(prompts)
    scope = model.disable_adapter() if disable_adapter and hasattr(model, "disable_adapter") \
        else contextlib.nullcontext()
    with scope:
        for start in range(0, len(order), batch_size):
            if deadline is not None and time.time() >= deadline:
                raise _timeout(results, len(prompts))
            batch = order[start:start + batch_size]
            out, timed_out = _generate_batch(model, tokenizer, [prompts[i] for i in batch], max_new_tokens, deadline)
            for i, generation in zip(batch, out):
                if not timed_out or generation.ended_cleanly:  # a cut-off answer is not an answer
                    results[i] = generation
            if timed_out:
                raise _timeout(results, len(prompts))
    return results  # type: ignore[return-value]


def _timeout(results: list[Generation | None], total: int) -> GenerationTimeout:
    done = sum(r is not None for r in results)
    return GenerationTimeout(f"generation passed its deadline with {done} of {total} answer(s) complete.",
                             partial=list(results),
                             hint="Allow more time, lower max_new_tokens, or ask fewer prompts at once.")


def _prompt_ids(tokenizer: Any, conversation: list[dict[str, str]]) -> list[int]:
    text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _generate_batch(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int,
                    deadline: float | None) -> tuple[list[Generation], bool]:
    import torch
    from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

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

    class _Deadline(StoppingCriteria):
        hit = False

        def __call__(self, ids: Any, scores: Any, **kwargs: Any) -> Any:
            if deadline is not None and time.time() >= deadline:
                _Deadline.hit = True
                return torch.ones(ids.shape[0], dtype=torch.bool, device=ids.device)
            return torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)

    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=sorted(stop_ids),
                              pad_token_id=pad, use_cache=True)
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device), generation_config=config,
                             stopping_criteria=StoppingCriteriaList([_Deadline()]))
    generations = []
    for row in out[:, width:].tolist():
        end = next((k for k, t in enumerate(row) if t in stop_ids), None)
        tokens = row if end is None else row[:end]
        generations.append(Generation(tokenizer.decode(tokens, skip_special_tokens=True).strip(), end is not None,
                                      len(tokens) + (end is not None)))
    return generations, _Deadline.hit
