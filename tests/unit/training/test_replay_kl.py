"""The KL-to-base term on replay rows: zero while the adapter is a no-op, positive and
differentiable once it is not, and only over replay answer tokens; the base model's states computed
once per run (teacher_states.py, examples packed in other rows) give the same term and gradient as a
no-grad forward over the step's whole row."""

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


def _kl(model, batch, mask, teacher=None):  # noqa: ANN001, ANN202
    """The term as the trainer computes it: positions found on the host, `teacher` (default: the
    reference, a no-grad forward over the whole row) giving the base model's states there."""
    from graphtune.tools.training.replay_kl import final_hidden_states, kl_to_base, predicting_positions

    positions = predicting_positions(mask)
    with final_hidden_states(model) as caught:
        model(**batch)
    teacher_hidden = (teacher or full_row_teacher)(model, batch, positions)
    return kl_to_base(model, caught["hidden"], positions, teacher_hidden)


def test_kl_is_zero_for_a_fresh_adapter_and_positive_with_a_gradient_after(tiny_model: Path) -> None:
    model = _peft_model(tiny_model)
    batch, mask = _batch([True, False, True])
    kl, positions = _kl(model, batch, mask)
    assert positions == 12 and abs(float(kl.detach())) < 1e-5  # LoRA B starts at zero: tuned == base
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    kl, _ = _kl(model, batch, mask)
    assert float(kl) > 0
    kl.backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_" in n and p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_no_replay_rows_no_term(tiny_model: Path) -> None:
    model = _peft_model(tiny_model)
    batch, mask = _batch([False, False])
    kl, positions = _kl(model, batch, mask)
    assert positions == 0 and float(kl) == 0.0


def test_teacher_states_that_do_not_match_the_positions_are_refused(tiny_model: Path) -> None:
    from graphtune.tools.training.replay_kl import kl_to_base, predicting_positions

    model = _peft_model(tiny_model)
    batch, mask = _batch([True, False])
    hidden = torch.zeros(1, batch["input_ids"].shape[1], model.config.hidden_size)
    with pytest.raises(ValueError, match="5 teacher states for 6 replay positions"):
        kl_to_base(model, hidden, predicting_positions(mask), torch.zeros(5, model.config.hidden_size))


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


def full_row_teacher(model, inputs, positions):  # noqa: ANN001, ANN201
    """The first teacher (issue 18), the reference: a no-grad forward over the step's whole row."""
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
    return examples, batch, batch.pop(REPLAY_MASK_KEY)


def _kl_and_lora_grads(model, batch, mask, teacher):  # noqa: ANN001, ANN202
    model.zero_grad(set_to_none=True)
    kl, positions = _kl(model, batch, mask, teacher)
    kl.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if "lora_" in name and p.grad is not None}
    return kl.detach(), positions, grads


def _live_adapter(tiny_model: Path):  # noqa: ANN202
    model = _peft_model(tiny_model)
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)  # a live adapter: tuned != base, so KL and gradient are not zero
    return model


@pytest.mark.parametrize(("packed", "row_tokens"), [(True, 8192), (True, 12), (False, 8192)])
def test_states_computed_once_give_the_full_row_term_and_gradient(
        tiny_model: Path, packed: bool, row_tokens: int) -> None:
    """The states come from a pass over the replay examples alone, packed into other rows (one row,
    or each example alone with row_tokens=12), with sdpa: the step's term and LoRA gradients equal
    those of a no-grad forward of the base model over the step's own row."""
    from graphtune.tools.training.teacher_states import TeacherStates, replay_examples

    model = _live_adapter(tiny_model)
    examples, batch, mask = _mixed_batch(packed)
    reference, positions, reference_grads = _kl_and_lora_grads(model, batch, mask, full_row_teacher)
    states = TeacherStates.compute(model, replay_examples([list(reversed(examples)), examples]), "cpu", row_tokens)
    assert states.states.shape[0] == 8 + 10 + 5  # each distinct replay example once, whatever the batches
    kl, state_positions, grads = _kl_and_lora_grads(model, batch, mask,
                                                    lambda _m, _b, _p: states.for_batch(examples, "cpu"))
    assert positions == state_positions == 8 + 10 + 5  # the replay documents' answer tokens (3 prompt tokens each)
    assert float(reference) > 1e-2
    torch.testing.assert_close(kl, reference, rtol=1e-5, atol=1e-6)
    assert grads.keys() == reference_grads.keys() and len(grads) > 0
    for name, grad in grads.items():  # float rounding only: within 1e-5 of the gradient's largest entry
        reference_grad = reference_grads[name]
        torch.testing.assert_close(grad, reference_grad, rtol=0, atol=1e-5 * float(reference_grad.abs().max()))


def test_the_equality_depends_on_per_document_attention(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above is not vacuous: states from a pass whose documents see each other give another term."""
    from graphtune.tools.training import teacher_states
    from graphtune.tools.training.packing import collate_packed

    def one_document(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        row = collate_packed(*args, **kwargs)
        row["position_ids"] = torch.arange(row["input_ids"].shape[1])[None]
        return row

    model = _peft_model(tiny_model)  # fresh adapter: the student is the base model, the true term is 0
    examples, batch, mask = _mixed_batch(packed=True)
    replay = teacher_states.replay_examples([examples])
    exact = teacher_states.TeacherStates.compute(model, replay, "cpu")
    monkeypatch.setattr(teacher_states, "collate_packed", one_document)
    leaky = teacher_states.TeacherStates.compute(model, replay, "cpu")
    exact_kl, _ = _kl(model, batch, mask, lambda _m, _b, _p: exact.for_batch(examples, "cpu"))
    leaky_kl, _ = _kl(model, batch, mask, lambda _m, _b, _p: leaky.for_batch(examples, "cpu"))
    assert abs(float(exact_kl)) < 1e-5 < float(leaky_kl)


def test_each_batch_reads_its_own_examples_rows_in_order() -> None:
    from graphtune.tools.training.teacher_states import TeacherStates, answer_positions
    from graphtune.tools.training.tokenize import Example

    a, b, c = (Example(list(range(n)), [-100] * 2 + list(range(2, n)), True) for n in (5, 7, 4))
    fact = Example([1, 2, 3], [-100, 2, 3])
    assert [answer_positions(e) for e in (a, b, c, fact)] == [3, 5, 2, 0]
    states = TeacherStates(torch.arange(10).float()[:, None], {id(a): (0, 3), id(b): (3, 5), id(c): (8, 2)})
    assert states.rows_for([c, fact, a]).tolist() == [8, 9, 0, 1, 2]
    assert states.for_batch([b], "cpu")[:, 0].tolist() == [3, 4, 5, 6, 7]
    assert states.rows_for([fact]).numel() == 0


def test_replay_examples_are_distinct_in_first_appearance_order() -> None:
    from graphtune.tools.training.teacher_states import replay_examples
    from graphtune.tools.training.tokenize import Example

    a, b = (Example([1, 2, 3], [-100, 2, 3], True) for _ in range(2))
    no_answer = Example([1, 2], [-100, -100], True)
    fact = Example([1, 2, 3], [-100, 2, 3])
    assert replay_examples([[fact, b], [a, b, no_answer], [a]]) == [b, a]


def test_examples_without_answer_tokens_get_no_states(tiny_model: Path) -> None:
    from graphtune.tools.training.teacher_states import TeacherStates
    from graphtune.tools.training.tokenize import Example

    model = _peft_model(tiny_model)
    model.train()
    silent = Example([5, 6, 7, 8], [-100] * 4, True)
    spoken = Example([5, 6, 7, 8, 9], [-100, -100, 7, 8, 9], True)
    states = TeacherStates.compute(model, [silent, spoken], "cpu", row_tokens=4)  # each in its own row
    assert states.states.shape == (3, model.config.hidden_size) and states.spans[id(silent)][1] == 0
    assert model.training  # the pass ran in eval mode and gave the mode back
    assert states.rows_for([silent, spoken]).tolist() == [0, 1, 2]


def test_the_kl_term_is_refused_under_fsdp() -> None:
    from graphtune.tools.errors import TrainingConfigError
    from graphtune.tools.training.config import LoraJobConfig, check_kl_strategy

    with pytest.raises(TrainingConfigError) as err:
        LoraJobConfig(dataset_name="d", base_model="m", strategy="fsdp", general_replay_kl=1.0)
    assert err.value.field == "general_replay_kl" and "--general-replay-kl 0" in err.value.hint
    assert "method='qlora' with gpus=1" in err.value.hint  # what an MCP client can pass
    cfg = LoraJobConfig(dataset_name="d", base_model="m", strategy="auto", general_replay_kl=1.0)
    with pytest.raises(TrainingConfigError):
        check_kl_strategy(cfg, "fsdp")  # `auto` resolved to FSDP for a model that does not fit one GPU
    check_kl_strategy(cfg, "ddp")
    LoraJobConfig(dataset_name="d", base_model="m", strategy="fsdp", general_replay_kl=0.0)


def test_each_rank_keeps_the_states_of_its_own_micro_batches() -> None:
    from graphtune.tools.training.teacher_states import replay_examples
    from graphtune.tools.training.tokenize import Example

    a, b, c = (Example([1, 2, 3], [-100, 2, 3], True) for _ in range(3))
    batches = [[a], [b], [a, c], [b]]  # rank r of 2 trains micro-batches r, r + 2
    assert replay_examples(batches, 0, 2) == [a, c] and replay_examples(batches, 1, 2) == [b]
    assert replay_examples(batches) == [a, b, c]


def test_a_batch_outside_the_share_gets_its_states_computed_then(tiny_model: Path) -> None:
    """covering(): states a rank lacks are computed when a batch needs them, the same as computed at once."""
    from graphtune.tools.training.teacher_states import TeacherStates

    model = _live_adapter(tiny_model)
    examples, _, _ = _mixed_batch(packed=True)
    replay = [e for e in examples if e.replay]
    whole = TeacherStates.compute(model, replay, "cpu")
    part = TeacherStates.compute(model, replay[:1], "cpu")
    assert part.covering(model, replay[:1], "cpu") is part  # nothing missing: no pass
    grown = part.covering(model, examples, "cpu")
    torch.testing.assert_close(grown.for_batch(examples, "cpu"), whole.for_batch(examples, "cpu"),
                               rtol=1e-4, atol=1e-5)  # other rows, other summation order: rounding only


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_fused_term_equals_the_checkpointed_one_with_its_gradient(
        monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype) -> None:
    """`_ChunkedKL` (gradient computed in the forward) gives the checkpointed path's sum and student
    gradient, across chunk boundaries (7 positions per chunk over 30 rows); the teacher gets none."""
    from graphtune.tools.training import replay_kl

    monkeypatch.setattr(replay_kl, "CHUNK_POSITIONS", 7)
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=False).to(dtype).requires_grad_(False)
    teacher = torch.randn(30, 16, dtype=dtype)
    results = []
    for fused in (True, False):
        torch.manual_seed(1)  # the same student both times
        student = (teacher.float() + 0.3 * torch.randn(30, 16)).to(dtype).requires_grad_()
        total = (replay_kl._ChunkedKL.apply(student, teacher, head.weight) if fused
                 else replay_kl._checkpointed_kl(head, student, teacher))
        (2.5 * total).backward()
        results.append((total.detach(), student.grad))
    (fused_total, fused_grad), (total, grad) = results
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 2e-2, "atol": 2e-2}
    assert float(total) > 1e-2
    torch.testing.assert_close(fused_total, total, **tolerance)
    assert fused_grad.dtype == dtype
    torch.testing.assert_close(fused_grad.float(), grad.float(), **tolerance)


def test_the_fused_term_matches_autograd_of_the_plain_formula() -> None:
    """Against autograd through the textbook formula (no chunks, no hand-written gradient)."""
    from graphtune.tools.training import replay_kl

    torch.manual_seed(2)
    weight = torch.randn(40, 8, dtype=torch.float64)
    teacher = torch.randn(5, 8, dtype=torch.float64)
    student = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    fused = replay_kl._ChunkedKL.apply(student, teacher, weight)
    (fused_grad,) = torch.autograd.grad(fused, student)
    log_p, log_q = torch.log_softmax(teacher @ weight.T, -1), torch.log_softmax(student @ weight.T, -1)
    plain = (log_p.exp() * (log_p - log_q)).sum()
    (plain_grad,) = torch.autograd.grad(plain, student)
    torch.testing.assert_close(fused, plain.float(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fused_grad, plain_grad)


def test_an_output_layer_that_trains_or_has_a_bias_takes_the_checkpointed_path(
        tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtune.tools.training import replay_kl

    plain = torch.nn.Linear(4, 6, bias=False).requires_grad_(False)
    assert replay_kl._plain_frozen_linear(plain)
    assert not replay_kl._plain_frozen_linear(torch.nn.Linear(4, 6, bias=True).requires_grad_(False))
    assert not replay_kl._plain_frozen_linear(torch.nn.Linear(4, 6, bias=False))  # trains: needs its own gradient
    hooked = torch.nn.Linear(4, 6, bias=False).requires_grad_(False)
    hooked.register_forward_hook(lambda *_: None)
    assert not replay_kl._plain_frozen_linear(hooked)  # the fused path would skip the hook
    replaced = torch.nn.Linear(4, 6, bias=False).requires_grad_(False)
    replaced.forward = lambda x: x  # as accelerate's hooks do, on the instance
    assert not replay_kl._plain_frozen_linear(replaced)
    model = _live_adapter(tiny_model)
    model.get_base_model().get_output_embeddings().weight.requires_grad_(True)
    taken = []
    monkeypatch.setattr(replay_kl, "_checkpointed_kl", lambda *a: taken.append(1) or a[1].sum() * 0.0)
    _kl(model, *_batch([True, False]), lambda m, b, p: torch.zeros(int(p.numel()), model.config.hidden_size))
    assert taken == [1]


def test_a_loader_worker_collates_the_same_batches_in_the_same_order(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CUDA jobs collate rows in a loader worker (engine.loader_workers): the batches it sends, their
    replay positions and batch indices, train exactly the adapter that in-process collation trains."""
    from graphtune.tools.training import engine
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.tokenize import Example

    cfg = LoraJobConfig(dataset_name="x", base_model=str(tiny_model), general_replay_kl=1.0, learning_rate=5e-2,
                        num_epochs=2, warmup=0, save_steps=1000, batch_size=2)
    examples = [Example(list(range(5 + i, 25 + i)), [-100] * 6 + list(range(11 + i, 25 + i)), i % 2 == 0)
                for i in range(8)]
    adapters = []
    for workers in (0, 1):
        monkeypatch.setattr(engine, "loader_workers", lambda _device, n=workers: n)
        torch.manual_seed(0)
        model = _peft_model(tiny_model)
        plan = engine.make_plan(examples, cfg, "cpu")
        trainer = engine.build_trainer(model, plan, cfg, "cpu", tmp_path / f"out{workers}", 0, engine.Hooks())
        assert trainer.args.dataloader_num_workers == workers
        trainer.train()
        adapters.append({n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n})
    assert adapters[0].keys() == adapters[1].keys() and adapters[0]
    assert any(float(p.abs().max()) > 0 for n, p in adapters[0].items() if "lora_B" in n)  # it trained
    for name, value in adapters[0].items():
        torch.testing.assert_close(adapters[1][name], value, rtol=0, atol=0)


def test_metrics_every_step_unless_a_gpu_run_is_long() -> None:
    from types import SimpleNamespace

    from graphtune.tools.training import engine
    from graphtune.tools.training.config import LoraJobConfig

    cfg = LoraJobConfig(dataset_name="x", base_model="x")
    on_cuda = [engine.logging_every(cfg, SimpleNamespace(steps=n), "cuda") for n in (1, 45, 199, 330, 5000)]
    assert on_cuda == [1, 1, 1, 3, 50]
    assert engine.logging_every(cfg, SimpleNamespace(steps=5000), "cpu") == 1
    assert engine.logging_every(cfg.model_copy(update={"logging_steps": 7}), SimpleNamespace(steps=330), "cuda") == 7
    assert engine.loader_workers("cuda") == 1 and engine.loader_workers("cpu") == engine.loader_workers("mps") == 0



def test_a_loader_worker_leaves_the_jobs_process_group() -> None:
    """A group SIGTERM (a graceful stop) must reach the training process only: torch's worker, signalled
    by anyone but its parent, dies and fails the run (engine.leave_job_process_group)."""
    import os

    from graphtune.tools.training import engine
    from graphtune.tools.training.tokenize import Example

    class Tagged(engine.PackedDataset):
        def __getitem__(self, i: int) -> dict:
            batch = super().__getitem__(i)
            batch["pgid"] = os.getpgid(0)
            return batch

    dataset = Tagged([[Example([1, 2, 3], [-100, 2, 3])], [Example([4, 5], [-100, 5])]], True, 0)
    dataset[0]  # the parent first: a forked worker copies what it recorded and must still leave the group
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=1)
    groups = {int(batch["pgid"]) for batch in loader}
    assert os.getpgid(0) not in groups and len(groups) == 1


def test_the_last_step_is_logged_whatever_the_interval(tiny_model: Path, tmp_path: Path) -> None:
    from graphtune.tools.training import engine
    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.tokenize import Example

    cfg = LoraJobConfig(dataset_name="x", base_model=str(tiny_model), learning_rate=5e-2, num_epochs=1, warmup=0,
                        save_steps=1000, batch_size=1, logging_steps=3)
    examples = [Example(list(range(5 + i, 25 + i)), [-100] * 6 + list(range(11 + i, 25 + i))) for i in range(5)]
    plan = engine.make_plan(examples, cfg, "cpu")
    metrics: list[dict] = []
    trainer = engine.build_trainer(_peft_model(tiny_model), plan, cfg, "cpu", tmp_path / "out", 0,
                                   engine.Hooks(on_metrics=metrics.append))
    trainer.train()
    steps = [m["step"] for m in metrics if "loss" in m]
    assert plan.steps % 3 and steps[-1] == plan.steps and 3 in steps
