"""The KL-to-base term on replay rows: zero while the adapter is a no-op, positive and
differentiable once it is not, and only over replay answer tokens; the teacher's forward over the
replay documents alone gives the same term and gradient as a forward over the whole row."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


def _peft_model(tiny_model: Path):  # noqa: ANN202
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32)
    base.config.use_cache = False  # as in training: a cache would switch off the per-document masks of packed rows
    return get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0))


def _batch(replay_flags: list[bool]):  # noqa: ANN202
    from graphtune.tools.training.packing import REPLAY_MASK_KEY, collate_packed
    from graphtune.tools.training.tokenize import Example

    examples = [Example(list(range(5 + i, 15 + i)), [-100] * 4 + list(range(9 + i, 15 + i)), flag)
                for i, flag in enumerate(replay_flags)]
    batch = collate_packed(examples, replay_mask=True)
    mask = batch.pop(REPLAY_MASK_KEY, None)
    return batch, mask if mask is not None else batch["labels"] != batch["labels"]


def test_a_batch_without_replay_rows_carries_no_mask() -> None:
    from graphtune.tools.training.packing import REPLAY_MASK_KEY, collate_packed, collate_padded
    from graphtune.tools.training.tokenize import Example

    facts = [Example([1, 2, 3], [-100, 2, 3]), Example([4, 5], [-100, 5])]
    assert REPLAY_MASK_KEY not in collate_packed(facts, replay_mask=True)  # the trainer then skips the teacher
    assert REPLAY_MASK_KEY not in collate_padded(facts, 0, replay_mask=True)


def test_replay_mask_covers_only_replay_answer_tokens() -> None:
    batch, mask = _batch([False, True])
    assert mask.shape == batch["labels"].shape
    assert int(mask.sum()) == 6  # the replay example's six answer tokens, none of the other's
    assert bool((batch["labels"][mask] != -100).all())


def test_kl_is_zero_for_a_fresh_adapter_and_positive_with_a_gradient_after(tiny_model: Path) -> None:
    from graphtune.tools.training.replay_kl import final_hidden_states, kl_to_base

    model = _peft_model(tiny_model)
    batch, mask = _batch([True, False, True])
    with final_hidden_states(model) as caught:
        model(**batch)
    kl, positions = kl_to_base(model, batch, caught["hidden"], mask)
    assert positions == 12 and abs(float(kl.detach())) < 1e-5  # LoRA B starts at zero: tuned == base
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    with final_hidden_states(model) as caught:
        model(**batch)
    kl, _ = kl_to_base(model, batch, caught["hidden"], mask)
    assert float(kl) > 0
    kl.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_" in n and p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_no_replay_rows_no_term(tiny_model: Path) -> None:
    from graphtune.tools.training.replay_kl import final_hidden_states, kl_to_base

    model = _peft_model(tiny_model)
    batch, mask = _batch([False, False])
    with final_hidden_states(model) as caught:
        model(**batch)
    kl, positions = kl_to_base(model, batch, caught["hidden"], mask)
    assert positions == 0 and float(kl) == 0.0


def test_trainer_adds_the_term_and_reports_it(tiny_model: Path, tmp_path: Path) -> None:
    from graphtune.tools.training import engine
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.tokenize import Example

    model = _peft_model(tiny_model)
    cfg = LoraJobConfig(dataset_name="x", base_model=str(tiny_model), general_replay_kl=1.0, learning_rate=5e-2,
                        num_epochs=4, warmup=0, save_steps=1000, batch_size=2)
    examples = [Example(list(range(5 + i, 25 + i)), [-100] * 6 + list(range(11 + i, 25 + i)), i % 2 == 0)
                for i in range(8)]
    plan = engine.make_plan(examples, cfg, "cpu")
    metrics: list[dict] = []
    trainer = engine.build_trainer(model, plan, cfg, "cpu", tmp_path / "out", 0, engine.Hooks(on_metrics=metrics.append))
    trainer.train()
    kls = [m["replay_kl"] for m in metrics if "replay_kl" in m]
    assert kls and kls[0] < 1e-5 < max(kls)  # zero at the start (adapter is a no-op), then the term is live


def full_row_teacher(model, inputs, replay_mask, positions):  # noqa: ANN001, ANN201, ARG001
    """The teacher before issue 21, the reference: a no-grad forward over the whole row."""
    forward_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    with torch.no_grad(), model.disable_adapter():
        hidden = model.get_base_model().get_decoder()(**forward_inputs, use_cache=False)[0]
    return hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)


def _mixed_batch(packed: bool):  # noqa: ANN202
    """Replay documents first, in the middle and last, fact documents between them, all of other lengths."""
    from graphtune.tools.training.packing import REPLAY_MASK_KEY, collate_packed, collate_padded
    from graphtune.tools.training.tokenize import Example

    shapes = [(11, True), (7, False), (5, False), (13, True), (9, False), (8, True)]
    token_lists = [[(7 * i + t) % 300 + 5 for t in range(n)] for i, (n, _) in enumerate(shapes)]
    examples = [Example(ids, [-100] * 3 + ids[3:], flag) for ids, (_, flag) in zip(token_lists, shapes)]
    batch = collate_packed(examples, replay_mask=True) if packed else collate_padded(examples, 0, replay_mask=True)
    return batch, batch.pop(REPLAY_MASK_KEY)


def _kl_and_lora_grads(model, batch, mask, teacher):  # noqa: ANN001, ANN202
    from graphtune.tools.training.replay_kl import final_hidden_states, kl_to_base

    model.zero_grad(set_to_none=True)
    with final_hidden_states(model) as caught:
        model(**batch)
    kl, positions = kl_to_base(model, batch, caught["hidden"], mask, teacher=teacher)
    kl.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if "lora_" in name and p.grad is not None}
    return kl.detach(), positions, grads


@pytest.mark.parametrize(("packed", "bucket"), [(True, False), (True, True), (False, False)])
def test_teacher_over_replay_documents_alone_gives_the_full_row_term_and_gradient(
        tiny_model: Path, packed: bool, bucket: bool) -> None:
    from functools import partial

    from graphtune.tools.training.replay_kl import replay_teacher_hidden

    model = _peft_model(tiny_model)
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)  # a live adapter: tuned != base, so KL and gradient are not zero
    batch, mask = _mixed_batch(packed)
    reference, positions, reference_grads = _kl_and_lora_grads(model, batch, mask, full_row_teacher)
    gathered = partial(replay_teacher_hidden, bucket=bucket)
    kl, gathered_positions, grads = _kl_and_lora_grads(model, batch, mask, gathered)
    assert positions == gathered_positions == 8 + 10 + 5  # the replay documents' answer tokens (3 prompt tokens each)
    assert float(reference) > 1e-2
    torch.testing.assert_close(kl, reference, rtol=1e-5, atol=1e-6)
    assert grads.keys() == reference_grads.keys() and len(grads) > 0
    for name, grad in grads.items():  # float rounding only: within 1e-5 of the gradient's largest entry
        reference_grad = reference_grads[name]
        torch.testing.assert_close(grad, reference_grad, rtol=0, atol=1e-5 * float(reference_grad.abs().max()))


def test_the_equality_depends_on_per_document_attention(tiny_model: Path) -> None:
    """The check above is not vacuous: a teacher whose documents see each other gives another term."""
    from graphtune.tools.training.replay_kl import replay_teacher_hidden

    def leaky_teacher(model, inputs, replay_mask, positions):  # noqa: ANN001, ANN202
        shape = inputs["input_ids"].shape
        one_document = {**inputs, "position_ids": torch.arange(shape[1]).expand(shape)}
        return replay_teacher_hidden(model, one_document, replay_mask, positions, bucket=False)

    model = _peft_model(tiny_model)
    batch, mask = _mixed_batch(packed=True)
    reference, _, _ = _kl_and_lora_grads(model, batch, mask, full_row_teacher)
    leaky, _, _ = _kl_and_lora_grads(model, batch, mask, leaky_teacher)
    assert abs(float(reference)) < 1e-5 < float(leaky)  # fresh adapter: the student is the base model


def test_teacher_row_holds_whole_replay_documents_and_a_padding_document() -> None:
    from graphtune.tools.training.replay_kl import teacher_row

    batch, mask = _mixed_batch(packed=True)
    row, where = teacher_row(batch, mask, bucket=True)
    replay_tokens = 11 + 13 + 8
    assert row["input_ids"].shape == (1, 128)  # a short row's one bucket: the row on the 128-token grid
    assert row["position_ids"][0, :replay_tokens].tolist() == list(range(11)) + list(range(13)) + list(range(8))
    assert row["position_ids"][0, replay_tokens:].tolist() == list(range(128 - replay_tokens))  # its own document
    starts = [0, 11 + 7 + 5, 11 + 7 + 5 + 13 + 9]
    assert [int(where[s]) for s in starts] == [0, 11, 24]
    assert int((where >= 0).sum()) == replay_tokens
    kept = where >= 0
    assert torch.equal(row["input_ids"][0, where[kept]], batch["input_ids"].reshape(-1)[kept])
    unbucketed, _ = teacher_row(batch, mask, bucket=False)
    assert unbucketed["input_ids"].shape == (1, replay_tokens)


def test_teacher_lengths_are_few_block_aligned_and_never_short() -> None:
    from graphtune.tools.training.replay_kl import teacher_length

    row = 49152
    lengths = {teacher_length(tokens, row) for tokens in range(1, row + 1)}
    assert len(lengths) == 8 and all(length % 128 == 0 for length in lengths) and max(lengths) == row
    assert all(tokens <= teacher_length(tokens, row) < tokens + row // 8 for tokens in (1, 6144, 6145, 9800, row))


def test_teacher_length_stays_on_the_block_grid_for_an_unpacked_batch() -> None:
    """A padded batch (packing off) may hold an off-grid number of tokens (3 rows of 517): the
    teacher's row is still a multiple of 128, and never shorter than the gathered tokens."""
    from graphtune.tools.training.replay_kl import teacher_length

    row = 3 * 517
    lengths = [teacher_length(tokens, row) for tokens in range(1, row + 1)]
    assert all(length % 128 == 0 for length in lengths)
    assert all(length >= tokens for tokens, length in enumerate(lengths, start=1))
