"""The KL-to-base term on replay rows: zero while the adapter is a no-op, positive and
differentiable once it is not, and only over replay answer tokens."""

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
