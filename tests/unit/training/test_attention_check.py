"""The flex_attention check is skipped once it passed for the same attention shape and software."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from graphtune.tools.training import attention_check

ENV = {"torch": "2.11", "cuda": "13.0", "transformers": "5.17", "gpu": "H200", "dtype": "torch.bfloat16"}


def _config(**overrides: object) -> SimpleNamespace:
    fields = {"model_type": "llama", "num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576}
    return SimpleNamespace(**{**fields, **overrides})


def test_the_key_changes_with_what_the_kernels_depend_on() -> None:
    key = attention_check.attention_key(_config(), ENV)
    assert key == attention_check.attention_key(_config(), dict(ENV))
    assert key != attention_check.attention_key(_config(num_key_value_heads=9), ENV)
    assert key != attention_check.attention_key(_config(head_dim=32), ENV)
    assert key != attention_check.attention_key(_config(), {**ENV, "torch": "2.12"})
    assert key != attention_check.attention_key(_config(), {**ENV, "gpu": "H100"})


def test_a_recorded_pass_is_found_and_other_keys_are_not(tmp_path: Path) -> None:
    record = tmp_path / "inductor" / attention_check.RECORD_NAME
    assert not attention_check.passed_before("abc", record)
    attention_check.record_pass("abc", record, ENV)
    attention_check.record_pass("def", record, ENV)
    assert attention_check.passed_before("abc", record) and attention_check.passed_before("def", record)
    assert not attention_check.passed_before("xyz", record)
    record.write_text("{torn")
    assert not attention_check.passed_before("abc", record)  # unreadable: check again, never fail
    attention_check.record_pass("abc", record, ENV)
    assert attention_check.passed_before("abc", record)


def test_ensure_attention_works_skips_the_compile_after_a_recorded_pass(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import torch

    from graphtune.tools.training import model_loading

    config = _config(_attn_implementation="flex_attention")

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, **_: object) -> None:
            raise AssertionError("the check ran although it had passed before")

    record = tmp_path / attention_check.RECORD_NAME
    monkeypatch.setattr(attention_check, "record_file", lambda: record)
    monkeypatch.setattr(attention_check, "cuda_environment", lambda dtype: ENV)
    attention_check.record_pass(attention_check.attention_key(config, ENV), record, ENV)
    assert model_loading.ensure_attention_works(Model(), "cuda", 10) == "flex_attention"
