"""A shared prefix computed once per packed row: the examples that start with the chat template's
default opening are marked (never on labelled tokens), and a row holding one copy of it gives the
loss, LoRA gradients and replay KL of the same examples packed without sharing (fp32, sdpa with the
dense mask on CPU; flex_attention's BlockMask forward on CPU, where flex has no backward). The plan is
the unshared one (the same examples in every step, so the same optimization); only the rows computed,
and the length CUDA pads them to, are shorter."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _dynamo_config_restored():  # noqa: ANN202 - compile_decoder_layers sets it for the whole (worker) process
    with torch._dynamo.config.patch(suppress_errors=torch._dynamo.config.suppress_errors):
        yield


# SmolLM2-Instruct's template: a default system prompt in every conversation that has none
SMOL_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QUESTIONS = [("What does `pkg.add` return?", "It returns the sum of its two arguments."),
             ("Which class does `pkg.Cat` inherit from?", "`pkg.Cat` inherits from `pkg.Animal`."),
             ("Where is `pkg.load` defined?", "`pkg.load` is defined in `pkg/io.py`."),
             ("List the methods of class `pkg.Store`.", "Class `pkg.Store` defines `get`, `put` and `close`."),
             ("What calls `pkg.parse`?", "`pkg.parse` is called by `pkg.load`."),
             ("Explain `pkg.Animal.speak`.", "It returns the sound the animal makes as a string.")]


def _tokenizer(tiny_model: Path):  # noqa: ANN202
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    tokenizer.chat_template = SMOL_TEMPLATE
    return tokenizer


def _examples(tiny_model: Path, replay: tuple[int, ...] = ()) -> list:
    """The questions as chats (the 3rd with its own system prompt, the 5th two turns long), marked."""
    from graphtune.tools.training.shared_prefix import mark_examples, template_opening
    from graphtune.tools.training.tokenize import encode

    tokenizer = _tokenizer(tiny_model)
    conversations = []
    for i, (q, a) in enumerate(QUESTIONS):
        chat = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        if i == 2:
            chat = [{"role": "system", "content": "You answer about pkg."}, *chat]
        if i == 4:
            chat += [{"role": "user", "content": "And `pkg.dump`?"}, {"role": "assistant", "content": "Nothing."}]
        conversations.append(chat)
    examples = [encode(tokenizer, chat) for chat in conversations]
    for i in replay:
        examples[i].replay = True
    mark_examples(examples, template_opening(tokenizer))
    return examples


def _peft_model(tiny_model: Path, attention: str = "sdpa"):  # noqa: ANN202
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32, attn_implementation=attention)
    base.config.use_cache = False  # as in training: a cache would switch off the per-document masks of packed rows
    torch.manual_seed(0)  # LoRA A is drawn at random: every model of a test the same
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0))
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)  # a live adapter: gradients reach every LoRA matrix
    return model


def _forward_inputs(model, batch: dict) -> dict:  # noqa: ANN001
    """What the trainer hands the model: the documents become the attention mask."""
    from graphtune.tools.training.shared_prefix import DOCUMENTS_KEY, attention_mask

    inputs = dict(batch)
    documents = inputs.pop(DOCUMENTS_KEY, None)
    if documents is not None:
        inputs["attention_mask"] = attention_mask(model, documents)
    return inputs


def _loss_and_grads(model, batch: dict):  # noqa: ANN001, ANN202
    model.zero_grad(set_to_none=True)
    loss = model(**_forward_inputs(model, batch)).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same_grads(grads: dict, reference: dict) -> None:
    assert grads.keys() == reference.keys() and len(grads) > 0
    for name, grad in grads.items():  # float summation order only: within 1e-5 of the gradient's largest entry
        torch.testing.assert_close(grad, reference[name], rtol=0, atol=1e-5 * float(reference[name].abs().max()))


def test_examples_with_the_default_system_prompt_are_marked_and_never_on_labels(tiny_model: Path) -> None:
    from graphtune.tools.training.shared_prefix import template_opening

    tokenizer = _tokenizer(tiny_model)
    opening = template_opening(tokenizer)
    assert "You are a helpful AI assistant named SmolLM" in tokenizer.decode(opening)
    examples = _examples(tiny_model)
    prefix = examples[0].shared_prefix
    assert [bool(e.shared_prefix) for e in examples] == [True, True, False, True, True, True]
    assert prefix > len(opening)  # the user turn's header is shared too
    assert tokenizer.decode(examples[0].input_ids[:prefix]).endswith("<|im_start|>user\n")
    for example in examples:
        if example.shared_prefix:
            assert example.input_ids[:prefix] == examples[0].input_ids[:prefix]
            assert all(label == -100 for label in example.labels[1:prefix + 1])


def test_marking_stops_before_the_first_labelled_token() -> None:
    from graphtune.tools.training.shared_prefix import mark_examples
    from graphtune.tools.training.tokenize import Example

    same = [7, 8, 9, 10, 11, 12]
    examples = [Example(same, [-100, -100, -100, 10, 11, 12]), Example(same, [-100] * 4 + [11, 12]),
                Example([5, 8, 9, 10], [-100, -100, 9, 10])]
    report = mark_examples(examples, [7, 8])
    assert [e.shared_prefix for e in examples] == [2, 2, 0]  # labels from index 3 on: the prefix ends at 2
    assert report["prefix_tokens"] == 2 and report["examples"] == 2 and report["of_examples"] == 3
    assert mark_examples(examples, [])["examples"] == 0 and all(e.shared_prefix == 0 for e in examples)


def test_a_shared_row_holds_the_prefix_once_with_positions_continuing(tiny_model: Path) -> None:
    from graphtune.tools.training.packing import collate_packed, label_tokens
    from graphtune.tools.training.shared_prefix import DOCUMENTS_KEY, row_length

    examples = _examples(tiny_model)
    prefix = examples[0].shared_prefix
    plain, shared = collate_packed(examples), collate_packed(examples, share_prefix=True)
    assert shared["input_ids"].shape[1] == row_length(examples, True) == plain["input_ids"].shape[1] - 4 * prefix
    assert label_tokens(shared) == label_tokens(plain)
    documents, positions = shared[DOCUMENTS_KEY][0], shared["position_ids"][0]
    assert documents[:prefix].tolist() == [0] * prefix and positions[:prefix].tolist() == list(range(prefix))
    first = prefix  # the first example's own tokens continue at the prefix length
    assert positions[first] == prefix and documents[first] == 1
    start_of_third = prefix + len(examples[0]) - prefix + len(examples[1]) - prefix
    assert positions[start_of_third] == 0 and documents[start_of_third] == -3  # its own system prompt: unshared


@pytest.mark.parametrize("compiled", [False, True])
def test_shared_rows_give_the_unshared_loss_and_lora_gradients(tiny_model: Path, compiled: bool) -> None:
    from graphtune.tools.training.compiled_layers import compile_decoder_layers
    from graphtune.tools.training.packing import BLOCK_TOKENS, collate_packed, round_up
    from graphtune.tools.training.shared_prefix import row_length

    examples = _examples(tiny_model)
    model = _peft_model(tiny_model)
    if compiled:  # dynamo traces the layers (no C++ toolchain needed), as compile_layers does on CUDA
        compile_decoder_layers(model, backend="eager")
    reference, reference_grads = _loss_and_grads(model, collate_packed(examples))
    pad_to = round_up(row_length(examples, True), BLOCK_TOKENS)  # the compiled rows' grid (engine.padded_row_tokens)
    assert pad_to < round_up(row_length(examples, False), BLOCK_TOKENS)
    for batch in (collate_packed(examples, share_prefix=True), collate_packed(examples, pad_to, share_prefix=True)):
        loss, grads = _loss_and_grads(model, batch)
        torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-6)
        _assert_same_grads(grads, reference_grads)


def test_the_equality_depends_on_the_document_mask(tiny_model: Path) -> None:
    """Not vacuous: the shared row under the position-id mask (documents cut off from the prefix) differs."""
    from graphtune.tools.training.packing import collate_packed
    from graphtune.tools.training.shared_prefix import DOCUMENTS_KEY

    examples = _examples(tiny_model)
    model = _peft_model(tiny_model)
    with torch.no_grad():
        reference = model(**collate_packed(examples)).loss
        shared = collate_packed(examples, share_prefix=True)
        cut_off = model(**{k: v for k, v in shared.items() if k != DOCUMENTS_KEY}).loss
    assert abs(float(cut_off) - float(reference)) > 1e-3


def test_flex_attention_takes_the_block_mask(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """flex_attention (CUDA's attention) honours the BlockMask: the shared row's forward gives the loss
    of today's unshared row. Forward only, uncompiled: flex_attention has no backward on the CPU."""
    import transformers.integrations.flex_attention as flex_integration
    from torch.nn.attention.flex_attention import flex_attention

    from graphtune.tools.training.packing import collate_packed

    monkeypatch.setattr(flex_integration, "compile_friendly_flex_attention",
                        lambda q, k, v, training=False, **kwargs: flex_attention(q, k, v, **kwargs))
    examples = _examples(tiny_model)
    model = _peft_model(tiny_model)
    with torch.no_grad():
        reference = model(**collate_packed(examples)).loss
        model.get_base_model().set_attn_implementation("flex_attention")
        shared = model(**_forward_inputs(model, collate_packed(examples, 256, share_prefix=True))).loss
    torch.testing.assert_close(shared, reference, rtol=1e-5, atol=1e-6)


def test_replay_positions_and_teacher_states_line_up_with_the_unshared_row(tiny_model: Path) -> None:
    """The base model's states are computed once, on the examples unshared (teacher_states.py); read
    for a shared row, whose positions are shifted by the prefix, they give the unshared row's term."""
    from graphtune.tools.training.packing import REPLAY_MASK_KEY, collate_packed
    from graphtune.tools.training.replay_kl import final_hidden_states, kl_to_base, predicting_positions
    from graphtune.tools.training.teacher_states import TeacherStates, replay_examples

    examples = _examples(tiny_model, replay=(1, 2, 5))  # marked and unmarked replay documents
    model = _peft_model(tiny_model)
    states = TeacherStates.compute(model, replay_examples([examples]), "cpu")

    def kl_and_grads(batch: dict):  # noqa: ANN202
        mask = batch.pop(REPLAY_MASK_KEY)
        positions = predicting_positions(mask)
        model.zero_grad(set_to_none=True)
        with final_hidden_states(model) as caught:
            model(**_forward_inputs(model, batch))
        kl, count = kl_to_base(model, caught["hidden"], positions, states.for_batch(examples, "cpu"))
        kl.backward()
        return kl.detach(), count, int(mask.sum()), {n: p.grad.clone() for n, p in model.named_parameters()
                                                      if p.grad is not None}

    reference, positions, masked, reference_grads = kl_and_grads(collate_packed(examples, replay_mask=True))
    kl, shared_positions, shared_masked, grads = kl_and_grads(
        collate_packed(examples, replay_mask=True, share_prefix=True))
    assert positions == shared_positions == masked == shared_masked > 0 and float(reference) > 1e-3
    torch.testing.assert_close(kl, reference, rtol=1e-5, atol=1e-6)
    _assert_same_grads(grads, reference_grads)


def _marked_and_unmarked(count: int = 60) -> list:
    """Examples of varied lengths (seeded): most start with a 24-token shared prefix, some have their own."""
    import random

    from graphtune.tools.training.tokenize import Example

    rng, prefix = random.Random(7), list(range(100, 124))
    examples = []
    for i in range(count):
        own = rng.randint(8, 60)
        if i % 4:
            examples.append(Example(prefix + [200 + i] * own, [-100] * 25 + [1] * (own - 1), shared_prefix=24))
        else:  # its own system prompt: unshared
            examples.append(Example([300 + i] * (own + 24), [-100] + [1] * (own + 23)))
    return examples


@pytest.mark.parametrize(("device", "budget", "accum", "max_steps"),
                         [("cuda", 1024, 1, None), ("cpu", 700, 3, None), ("cuda", 512, 2, 5)])
def test_sharing_plans_the_same_batches_as_without_it(device: str, budget: int, accum: int,
                                                       max_steps: int | None) -> None:
    """The plan is made on full lengths either way: every step holds the same examples, in the same
    order, so the optimization is the same; only the computed tokens drop."""
    from graphtune.tools.training import engine
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.shared_prefix import row_length

    examples = _marked_and_unmarked()
    cfg = LoraJobConfig(dataset_name="x", base_model="x", num_epochs=3, gradient_accumulation_steps=accum,
                        max_steps=max_steps)
    plain = engine.make_plan(examples, cfg, device, budget=budget)
    shared = engine.make_plan(examples, cfg.updated(shared_prefix=True), device, budget=budget)
    assert plain.shared_prefix == 0 and shared.shared_prefix == 24
    members = lambda plan: [[examples.index(e) for e in b] for b in plan.batches]  # noqa: E731
    assert members(shared) == members(plain) and len(plain.batches) > 3 * accum
    assert (shared.epoch_of_batch, shared.steps, shared.tokens_per_batch, shared.grad_accum) == \
        (plain.epoch_of_batch, plain.steps, plain.tokens_per_batch, plain.grad_accum)
    assert shared.unshared_tokens == plain.unshared_tokens == plain.tokens
    assert shared.tokens == sum(row_length(b, True) for b in shared.batches) < plain.tokens


def test_cuda_rows_are_padded_to_the_longest_shared_row() -> None:
    """The one compiled shape is the longest row as computed (on the 128-token grid), not the budget:
    padding the shorter rows back to the budget would compute the saved tokens as padding."""
    from graphtune.tools.training import engine
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.packing import BLOCK_TOKENS, round_up
    from graphtune.tools.training.shared_prefix import DOCUMENTS_KEY, SAVED_TOKENS_KEY, row_length

    examples = _marked_and_unmarked()
    cfg = LoraJobConfig(dataset_name="x", base_model="x", num_epochs=1, shared_prefix=True)
    plain = engine.make_plan(examples, cfg.updated(shared_prefix=False), "cuda", budget=1024)
    shared = engine.make_plan(examples, cfg, "cuda", budget=1024)
    assert engine.padded_row_tokens(plain, cfg, "cuda") == 1024
    pad_to = engine.padded_row_tokens(shared, cfg, "cuda")
    assert pad_to == round_up(max(row_length(b, True) for b in shared.batches), BLOCK_TOKENS) < 1024
    assert engine.padded_row_tokens(shared, cfg, "cpu") is None  # off CUDA rows are not padded
    dataset = engine.PackedDataset(shared.batches, True, 0, pad_to, share_prefix=True)
    for members, batch in zip(shared.batches, dataset):
        assert batch["input_ids"].shape == batch[DOCUMENTS_KEY].shape == (1, pad_to)
        assert batch[engine.PAD_TOKENS_KEY] == pad_to - row_length(members, True)
        assert batch[SAVED_TOKENS_KEY] == sum(len(m) for m in members) - row_length(members, True)


def test_rows_stay_on_the_block_grid_when_an_example_is_longer_than_the_budget() -> None:
    from graphtune.tools.training import engine
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.tokenize import Example

    prefix = list(range(10, 30))
    examples = [Example(prefix + [5] * n, [-100] * 21 + [1] * (n - 1), shared_prefix=20)
                for n in (300, 900, 1500, 200, 700, 1100, 50, 1400)]
    cfg = LoraJobConfig(dataset_name="x", base_model="x", num_epochs=2, shared_prefix=True)
    plan = engine.make_plan(examples, cfg, "cuda", budget=1024)
    pad_to = engine.padded_row_tokens(plan, cfg, "cuda")
    dataset = engine.PackedDataset(plan.batches, True, 0, pad_to, share_prefix=True)
    assert pad_to == 1536 and len({tuple(batch["input_ids"].shape) for batch in dataset}) == 1  # 1520 tokens


def test_the_trainer_learns_the_same_with_and_without_sharing(tiny_model: Path, tmp_path: Path) -> None:
    """Through the engine (several rows per step, accumulated, over two epochs; replay KL on): the same
    examples in every step, the same loss at every step, the same adapter after, and the computed
    tokens plus the shared ones are the unshared count."""
    from graphtune.tools.training import engine
    from graphtune.tools.training.config import LoraJobConfig

    examples = _examples(tiny_model, replay=(1, 2))
    cfg = LoraJobConfig(dataset_name="x", base_model=str(tiny_model), general_replay_kl=1.0, learning_rate=5e-2,
                        num_epochs=2, warmup=0, save_steps=1000, tokens_per_batch=256, gradient_accumulation_steps=2)
    runs = []
    for share in (False, True):
        model = _peft_model(tiny_model)
        run_cfg = cfg.updated(shared_prefix=share)
        plan = engine.make_plan(examples, run_cfg, "cpu")
        metrics: list[dict] = []
        hooks = engine.Hooks(on_metrics=metrics.append)
        engine.build_trainer(model, plan, run_cfg, "cpu", tmp_path / f"out-{share}", 0, hooks).train()
        weights = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
        runs.append(([m["loss"] for m in metrics if "loss" in m], weights, hooks.stats, plan))
    (plain_losses, plain_weights, plain_stats, plain), (losses, weights, stats, plan) = runs
    assert [[id(e) for e in b] for b in plan.batches] == [[id(e) for e in b] for b in plain.batches]
    assert plan.shared_prefix > 0 and len(plan.batches) >= 4 and max(len(b) for b in plan.batches) > 1
    assert len(losses) == len(plain_losses) == plan.steps == plain.steps
    assert losses == pytest.approx(plain_losses, rel=1e-4)
    for name, weight in weights.items():  # Adam divides by the gradient's own scale: rounding shows more here
        torch.testing.assert_close(weight, plain_weights[name], rtol=1e-3, atol=1e-4)
    assert stats["tokens_seen"] == plan.tokens < plain_stats["tokens_seen"] == plain.tokens
    assert stats["tokens_seen"] + stats["tokens_shared"] == plain_stats["tokens_seen"] == plan.unshared_tokens


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (flex_attention's compiled kernels)")
@pytest.mark.parametrize("compiled", [False, True])
def test_on_cuda_compiled_flex_attention_gives_the_unshared_loss_and_gradients(
        tiny_model: Path, tmp_path: Path, compiled: bool) -> None:
    """The training path on CUDA: compiled flex_attention (forward and backward) with the BlockMask,
    rows as the engine builds them (the same plan both ways; padded onto the 128-token grid, the shared
    row to its own shorter length), optionally compiled decoder layers (inductor), against today's
    unshared rows (transformers' own block mask from position ids). Head dim 64: inductor cannot build
    flex kernels for some small head dims (model_loading.ensure_attention_works)."""
    from tiny_model import create_tiny_model

    from graphtune.tools.training import engine
    from graphtune.tools.training.compiled_layers import compile_decoder_layers
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.packing import BLOCK_TOKENS, round_up
    from graphtune.tools.training.shared_prefix import SAVED_TOKENS_KEY

    texts = [t for pair in QUESTIONS for t in pair] * 20
    model_folder = create_tiny_model(tmp_path / "tiny-llama-hd64", texts, vocab_size=400, hidden=256)
    examples = _examples(model_folder)
    model = _peft_model(model_folder, "flex_attention").cuda()
    if compiled:
        compile_decoder_layers(model)
    budget = round_up(sum(len(e) for e in examples), BLOCK_TOKENS)  # one row holds them all
    cfg = LoraJobConfig(dataset_name="x", base_model="x", num_epochs=1)
    rows = []
    for share in (False, True):
        plan = engine.make_plan(examples, cfg.updated(shared_prefix=share), "cuda", budget=budget)
        pad_to = engine.padded_row_tokens(plan, cfg, "cuda")
        rows.append(next(iter(engine.PackedDataset(plan.batches, True, 0, pad_to, share_prefix=share))))
    assert len(plan.batches) == 1 and rows[1]["input_ids"].shape[1] < rows[0]["input_ids"].shape[1] == budget

    def on_cuda(batch: dict) -> dict:
        skip = (engine.PAD_TOKENS_KEY, SAVED_TOKENS_KEY)
        return {k: v.cuda() for k, v in batch.items() if k not in skip}

    with torch._dynamo.config.patch(suppress_errors=False):  # a compile failure must fail the test, not run eagerly
        reference, reference_grads = _loss_and_grads(model, on_cuda(rows[0]))
        loss, grads = _loss_and_grads(model, on_cuda(rows[1]))
    torch.testing.assert_close(loss, reference, rtol=1e-4, atol=1e-5)
    assert grads.keys() == reference_grads.keys() and len(grads) > 0
    # Inductor fuses the shared and the unshared rows' kernels differently: on an H200 (2026-12-04) 5 of
    # 1,024 gradient elements of the compiled run differed by up to 1.14e-4 of the largest (the eager
    # run stayed within 1e-4). The loss above still has to agree to 1e-4.
    scale = 5e-4 if compiled else 1e-4
    for name, grad in grads.items():
        torch.testing.assert_close(grad, reference_grads[name], rtol=0,
                                   atol=scale * float(reference_grads[name].abs().max()))
