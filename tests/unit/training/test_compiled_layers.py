"""Compiled decoder layers: chosen only where they were measured to pay, the same numbers as the
eager layers, parameter names unchanged (checkpoints and adapters load either way), and run
eagerly wherever shapes vary (evaluation, generation, the replay teacher)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _dynamo_config_restored():  # noqa: ANN202 - compile_decoder_layers sets it for the whole (worker) process
    with torch._dynamo.config.patch(suppress_errors=torch._dynamo.config.suppress_errors):
        yield


def _peft_model(tiny_model: Path):  # noqa: ANN202
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32)
    base.config.use_cache = False
    return get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0))


def _cfg(**changes):  # noqa: ANN202
    from graphtune.tools.training.config import LoraJobConfig

    return LoraJobConfig(base_model="x", dataset_name="x", **changes)


def test_layers_are_compiled_only_for_single_gpu_lora_without_checkpointing() -> None:
    from graphtune.tools.training.compiled_layers import wants_compiled_layers

    def wants(cfg=None, device="cuda", single=True, checkpointed=0) -> bool:  # noqa: ANN001
        return wants_compiled_layers(cfg or _cfg(compile_layers=True), device, single_process=single,
                                     checkpointed_layers=checkpointed)

    assert wants()
    assert not wants(device="cpu") and not wants(device="mps")
    assert not wants(cfg=_cfg(compile_layers=True, method="qlora"))
    assert not wants(single=False)
    assert not wants(checkpointed=3)
    assert wants(cfg=_cfg())  # on by default: same-call replicates matched eager accuracy (bench/RESULTS.md)
    assert not wants(cfg=_cfg(compile_layers=False))
    assert not wants(cfg=_cfg(compile_layers=True, packing=False))  # right-padded batches: one shape per batch


def test_compiled_layers_give_the_eager_numbers_and_keep_parameter_names(tiny_model: Path) -> None:
    from graphtune.tools.training.compiled_layers import compile_decoder_layers, decoder_layers

    model = _peft_model(tiny_model)
    names = list(model.state_dict())
    ids = torch.arange(2, 34).unsqueeze(0)
    eager = model(input_ids=ids, labels=ids).loss
    eager.backward()
    eager_grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad(set_to_none=True)

    compiled = compile_decoder_layers(model, backend="eager")  # dynamo traces, no C++ toolchain needed
    assert compiled == len(decoder_layers(model)) > 0
    assert all(layer._compiled_call_impl is not None for layer in decoder_layers(model))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert torch.allclose(loss, eager, atol=1e-5)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, eager_grads))
    assert list(model.state_dict()) == names  # in place: no `_orig_mod.` prefix in saved adapters


def test_evaluation_and_the_replay_teacher_run_the_layers_eagerly(tiny_model: Path) -> None:
    from graphtune.tools.training.compiled_layers import (
        compile_decoder_layers,
        decoder_layers,
        eager_layers,
        sdpa_attention,
    )
    from graphtune.tools.training.teacher_states import TeacherStates
    from graphtune.tools.training.tokenize import Example

    model = _peft_model(tiny_model)
    compile_decoder_layers(model, backend="eager")
    compiled = [layer._compiled_call_impl for layer in decoder_layers(model)]
    with eager_layers(model):
        assert all(layer._compiled_call_impl is None for layer in decoder_layers(model))
    with sdpa_attention(model):  # evaluation loss and probe answers
        assert all(layer._compiled_call_impl is None for layer in decoder_layers(model))
    assert [layer._compiled_call_impl for layer in decoder_layers(model)] == compiled  # restored

    seen: list[bool] = []
    layer0 = decoder_layers(model)[0]
    handle = layer0.register_forward_pre_hook(lambda module, args: seen.append(module._compiled_call_impl is None))
    replay = Example(list(range(2, 18)), [-100] * 8 + list(range(10, 18)), True)
    TeacherStates.compute(model, [replay], "cpu")
    handle.remove()
    assert seen == [True]  # the pass for the replay teacher's states ran the layer uncompiled


def test_a_model_without_decoder_layers_is_left_alone() -> None:
    from graphtune.tools.training.compiled_layers import compile_decoder_layers, eager_layers

    module = torch.nn.Linear(2, 2)
    assert compile_decoder_layers(module, backend="eager") == 0
    with eager_layers(module):
        pass


def test_inside_eager_layers_compile_errors_raise_again() -> None:
    from graphtune.tools.training.compiled_layers import eager_layers

    def broken(gm, example):  # noqa: ANN001, ANN202
        raise RuntimeError("inductor failed")

    with torch._dynamo.config.patch(suppress_errors=True):  # as compile_decoder_layers leaves it
        with eager_layers(torch.nn.Linear(2, 2)), pytest.raises(Exception, match="inductor failed"):
            torch.compile(lambda x: x.cos() + 1, backend=broken)(torch.ones(2))


def test_packed_rows_have_one_shape_when_the_budget_is_below_the_longest_example() -> None:
    from graphtune.tools.training import engine
    from graphtune.tools.training.tokenize import Example

    examples = [Example(list(range(n)), list(range(n))) for n in (300, 900, 1500, 200, 700, 1100, 50, 1400)]
    cfg = _cfg(num_epochs=2)
    plan = engine.make_plan(examples, cfg, "cuda", budget=1024)  # e.g. an OOM retry's halved budget
    dataset = engine.PackedDataset(plan.batches, True, 0, engine.padded_row_tokens(plan, cfg, "cuda"))
    assert len({tuple(batch["input_ids"].shape) for batch in dataset}) == 1
