"""Evaluation speed without changed answers (issue 21 items 1 and 3), on the tiny CPU model:
the LoRA merged for tuned-side generation answers exactly as the unmerged adapter and leaves the
base weights (and base answers) untouched; per-row token budgets answer as separate batches did;
the tokenization cache serves identical examples and misses on changed data."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

QUESTIONS = ["What does `pkg.add` return?", "Which class does `pkg.Cat` inherit from?", "Where is `pkg.load` defined?",
             "List the methods of class `pkg.Store`.", "What calls `pkg.parse`?", "Explain `pkg.Animal.speak`.",
             "Hi", "What is `pkg`?"]


def _conversations() -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": q}] for q in QUESTIONS]


def _peft_model(tiny_model: Path, **lora: Any) -> tuple[Any, Any]:
    """The tiny base with a LoRA on every linear whose B is random (a fresh LoRA's B is zero:
    merged or not, it would change nothing), in eval mode."""
    import torch
    from peft import LoraConfig, get_peft_model

    from graphtune.tools.training.generation import load_for_inference

    model, tokenizer = load_for_inference(str(tiny_model), None, "cpu", SimpleNamespace())
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.1,
                                             **lora))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    model.eval()
    return model, tokenizer


def _base_state(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" not in k}


def test_merged_lora_answers_as_the_unmerged_adapter_and_leaves_the_base_untouched(tiny_model: Path) -> None:
    import torch

    from graphtune.tools.training.generation import generate_chat_detailed
    from graphtune.tools.training.lora_merge import merged_lora

    model, tokenizer = _peft_model(tiny_model)
    conversations = _conversations()
    before = _base_state(model)
    base = generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=24, disable_adapter=True)
    unmerged = generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=24, merge=False)
    merged = generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=24, merge=True)
    assert merged == unmerged
    assert merged != base  # the adapter changes the answers: the comparison above means something
    with merged_lora(model) as did_merge:
        assert did_merge
        ids = torch.tensor([[1, 2, 3, 4]])
        with torch.no_grad():
            merged_logits = model(input_ids=ids).logits
    with torch.no_grad():
        unmerged_logits = model(input_ids=ids).logits
    torch.testing.assert_close(merged_logits, unmerged_logits, rtol=1e-4, atol=1e-4)
    after = _base_state(model)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)  # bit for bit
    assert generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=24, disable_adapter=True) == base
    assert not any(getattr(m, "merged", False) for m in model.modules())


def test_merge_falls_back_where_it_cannot_be_exact(tiny_model: Path) -> None:
    from graphtune.tools.training.generation import generate_chat_detailed, load_for_inference
    from graphtune.tools.training.lora_merge import merged_lora

    dora, tokenizer = _peft_model(tiny_model, use_dora=True)
    with merged_lora(dora) as did_merge:
        assert not did_merge  # DoRA's magnitude vector: not a plain weight delta
    assert generate_chat_detailed(dora, tokenizer, _conversations(), max_new_tokens=8, merge=True) == \
        generate_chat_detailed(dora, tokenizer, _conversations(), max_new_tokens=8, merge=False)
    model, _ = _peft_model(tiny_model)
    model.train()  # dropout is live: merging would change the computation
    with merged_lora(model) as did_merge:
        assert not did_merge
    plain, _ = load_for_inference(str(tiny_model), None, "cpu", SimpleNamespace())
    with merged_lora(plain) as did_merge:  # no adapter at all
        assert not did_merge


def test_per_row_budgets_answer_as_separate_batches(tiny_model: Path) -> None:
    from graphtune.tools.training.generation import generate_chat_detailed

    model, tokenizer = _peft_model(tiny_model)
    conversations = _conversations()
    budgets = [3, 17, 5, 17, 1, 9, 3, 30]
    together = generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=budgets, batch_size=8)
    alone = [generate_chat_detailed(model, tokenizer, [c], max_new_tokens=b, batch_size=1)[0]
             for c, b in zip(conversations, budgets, strict=True)]
    assert together == alone
    assert all(g.new_tokens <= b for g, b in zip(together, budgets, strict=True))
    assert generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=12, batch_size=3) == \
        generate_chat_detailed(model, tokenizer, conversations, max_new_tokens=12, batch_size=None)


def test_run_probes_keeps_the_budget_of_each_reference_group(tiny_model: Path) -> None:
    from graphtune.tools.training.evaluate import answer_budget, probe_budgets, run_probes

    lengths = [5, 200, 40, 7, 90, 300, 12, 60]
    budgets = probe_budgets(lengths, 3)  # groups by length: (5, 7, 12) (40, 60, 90) (200, 300)
    assert budgets == [answer_budget(12), answer_budget(300), answer_budget(90), answer_budget(12),
                       answer_budget(90), answer_budget(300), answer_budget(12), answer_budget(90)]
    model, tokenizer = _peft_model(tiny_model)
    probes = [{"id": f"p{i}", "fact_type": "summary", "question": q,
               "gold": {"kind": "module", "module": "pkg"}} for i, q in enumerate(QUESTIONS)]
    rows = run_probes(model, tokenizer, probes, disable_adapter=False, batch_size=3, lengths=lengths, deadline=None)
    assert [r["id"] for r in rows] == [p["id"] for p in probes] and all(r["answered"] for r in rows)


def test_auto_batch_size_off_cuda_and_kv_bytes() -> None:
    from transformers import LlamaConfig

    from graphtune.tools.training.generation import CPU_BATCH, auto_batch_size, kv_bytes_per_token, row_bytes

    smol = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                       num_attention_heads=9, num_key_value_heads=3)
    assert kv_bytes_per_token(smol) == 2 * 30 * 3 * 64 * 2
    assert row_bytes(smol, 80, 128) > kv_bytes_per_token(smol) * 208
    tiny = SimpleNamespace(parameters=lambda: iter([__import__("torch").zeros(1)]), config=smol)
    assert auto_batch_size(tiny, 80, 128) == CPU_BATCH


@pytest.fixture
def tokenizer(tiny_model: Path) -> Any:
    from graphtune.tools.training.model_loading import load_tokenizer
    from graphtune.tools.training.tokenize import ensure_chat_template

    tok = load_tokenizer(str(tiny_model))
    ensure_chat_template(tok)
    return tok


def test_token_cache_hit_is_identical_and_changed_data_misses(tokenizer: Any, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtune.tools.training import token_cache
    from graphtune.tools.training.tokenize import encode_all

    calls: list[int] = []

    def counting(tok: Any, conversations: Any, max_len: int, *, replay: bool = False) -> Any:
        calls.append(len(conversations))
        return encode_all(tok, conversations, max_len, replay=replay)

    monkeypatch.setattr(token_cache, "encode_all", counting)
    conversations = [[{"role": "user", "content": q}, {"role": "assistant", "content": f"Answer {i}."}]
                     for i, q in enumerate(QUESTIONS)]
    conversations.append([{"role": "user", "content": "x " * 300}, {"role": "assistant", "content": "y"}])  # dropped
    folder = tmp_path / "tokenized"
    first = token_cache.cached_encode_all(tokenizer, conversations, 64, folder)
    again = token_cache.cached_encode_all(tokenizer, conversations, 64, folder)
    assert calls == [9] and again == first == encode_all(tokenizer, conversations, 64)
    assert first[1].dropped_no_answer == 1
    changed = [*conversations[:-2], [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
               conversations[-1]]
    assert token_cache.cached_encode_all(tokenizer, changed, 64, folder) == encode_all(tokenizer, changed, 64)
    token_cache.cached_encode_all(tokenizer, conversations, 128, folder)  # another max_seq_length
    tokenizer.chat_template += "{# another template #}"
    token_cache.cached_encode_all(tokenizer, conversations, 64, folder)
    assert len(calls) == 4 and len(list(folder.glob("*.npz"))) == 4
    for entry in folder.glob("*.npz"):  # a torn entry is a miss, never an error
        entry.write_bytes(entry.read_bytes()[:100])
    assert token_cache.cached_encode_all(tokenizer, changed, 64, folder) == encode_all(tokenizer, changed, 64)
    assert len(calls) == 5 and not list(folder.glob(".tmp-*"))
    replayed = token_cache.cached_encode_all(tokenizer, changed, 64, folder, replay=True)  # replay rows: own entry
    assert len(calls) == 6 and replayed == encode_all(tokenizer, changed, 64, replay=True)
    assert token_cache.cached_encode_all(tokenizer, changed, 64, folder, replay=True) == replayed
    assert len(calls) == 6 and all(e.replay for e in replayed[0])


def test_train_job_data_keeps_the_replay_mask_through_the_token_cache(tokenizer: Any, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The train job encodes general-replay rows apart (replay=True: their answer tokens carry the KL
    term); served from the cache on a second job, they are still marked and the knowledge rows are not."""
    import json

    from graphtune.tools.training import token_cache
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.tokenize import encode_all
    from graphtune.tools.training.train_job import _prepare_data
    from graphtune.tools.training.general_replay import ReplaySet

    calls: list[bool] = []

    def counting(tok: Any, conversations: Any, max_len: int, *, replay: bool = False) -> Any:
        if conversations:  # a .jsonl dataset has no eval split: nothing to encode, nothing cached
            calls.append(replay)
        return encode_all(tok, conversations, max_len, replay=replay)

    monkeypatch.setattr(token_cache, "encode_all", counting)
    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q},
                                                     {"role": "assistant", "content": f"Answer {i}."}]}) + "\n"
                            for i, q in enumerate(QUESTIONS)), encoding="utf-8")
    replay_rows = [[{"role": "user", "content": f"Tell me a fact {i}."}, {"role": "assistant", "content": "Water."}]
                   for i in range(3)]
    cfg = LoraJobConfig.from_dict({"dataset_name": str(data), "base_model": "tiny", "general_replay": 0.25,
                                   "max_seq_length": 64})
    settings = SimpleNamespace(datasets_dir=tmp_path / "datasets", base_models_path=tmp_path / "models")
    runs = [_prepare_data(cfg, settings, tokenizer, lambda rows: ReplaySet(replay_rows[:rows])) for _ in range(2)]
    assert calls == [False, True]  # the second job tokenizes nothing
    for run in runs:
        assert [e.replay for e in run["train"]] == [False] * len(QUESTIONS) + [True] * 3
        assert run["general_replay"]["rows"] == 3
    assert runs[0]["train"] == runs[1]["train"]


def test_generation_runs_without_cudnn_attention_and_restores_it(tiny_model: Path) -> None:
    """cuDNN's sdpa builds a plan per shape (each decode step is one): a first evaluation on an H200
    spent ~21 s on them. Generation switches that backend off for its call only."""
    import torch

    from graphtune.tools.training.generation import generate_chat_detailed, load_for_inference

    model, tokenizer = load_for_inference(str(tiny_model), None, "cpu", SimpleNamespace())
    seen: list[bool] = []
    handle = model.register_forward_pre_hook(lambda *_: seen.append(torch.backends.cuda.cudnn_sdp_enabled()))
    before = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        generate_chat_detailed(model, tokenizer, _conversations()[:2], max_new_tokens=4)
    finally:
        handle.remove()
    assert seen and not any(seen)
    assert torch.backends.cuda.cudnn_sdp_enabled() == before


def test_the_tuned_side_answers_probes_and_general_questions_in_one_call_as_two_calls_did(
        tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """evaluate_knowledge's probes and general questions share one generate call per model (a decode
    step costs about the same for more rows on a GPU); every answer is what the separate calls give."""
    from graphtune.tools.training import generation
    from graphtune.tools.training.evaluate import (
        _answer_side,
        _general_payload,
        _general_request,
        _probe_request,
        _probes_payload,
        answer_general,
        general_questions,
        reference_lengths,
        run_probes,
    )

    model, tokenizer = _peft_model(tiny_model)
    probes = [{"id": f"p{i}", "fact_type": "summary", "question": q, "reference": "`pkg` does it.",
               "gold": {"kind": "module", "module": "pkg"}} for i, q in enumerate(QUESTIONS)]
    lengths = reference_lengths(tokenizer, probes)
    questions = general_questions(2)
    separate = (run_probes(model, tokenizer, probes, disable_adapter=False, batch_size=3, lengths=lengths, deadline=None),
                answer_general(model, tokenizer, disable_adapter=False, batch_size=3, per_category=2))
    calls: list[int] = []
    real = generation.generate_chat_detailed
    monkeypatch.setattr(generation, "generate_chat_detailed",
                        lambda m, t, conversations, **kw: calls.append(len(conversations)) or real(m, t, conversations, **kw))
    parts = {"probes": (_probe_request(probes, lengths, 3), _probes_payload(probes, 3)),
             "general": (_general_request(questions), _general_payload(questions, 3))}
    together = _answer_side(model, tokenizer, parts, base=False, cache=None, deadline=None)
    assert calls == [len(probes) + len(questions)]
    assert (together["probes"], together["general"]) == separate
