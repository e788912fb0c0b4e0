"""The converted-tokenizer check: a character-level or lossy tokenizer is refused with a coded error
that names the model, what is wrong, the transformers version and the upgrade; a real subword
tokenizer passes; a refused conversion publishes no cache folder.

Tokenizers are built here with the `tokenizers` library (no downloads): a byte-level BPE without
merges is what transformers 5.0-5.17 made of Gemma's GGUF tokenizer (one token per character)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from graphtune.tools.errors import ModelUnsupported
from graphtune.tools.training import gguf_cache, tokenizer_check
from graphtune.tools.training.tokenizer_check import SAMPLES, check_converted_tokenizer, tokenizer_problem

CORPUS = [text for text, _ in SAMPLES] * 3 + [
    "The dog sleeps at home, and the fox runs over the hill to the lazy brown river.",
    "def sum_of(numbers):\n    return sum(numbers)  # add both of them\n",
]


def _byte_level_bpe(trained: bool) -> Any:
    """A byte-level BPE: with merges learned from CORPUS (a real subword vocabulary) or with none."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    model = models.BPE() if trained else models.BPE(vocab={c: i for i, c in enumerate(sorted(alphabet))}, merges=[])
    backend = Tokenizer(model)
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    if trained:
        backend.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=600, initial_alphabet=alphabet,
                                                                show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=backend)


def _lossy_word_level() -> Any:
    """Whole words, but every word outside its tiny vocabulary becomes [UNK]: it cannot round-trip."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "The": 1, "quick": 2}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")


def test_a_real_subword_tokenizer_passes() -> None:
    assert tokenizer_problem(_byte_level_bpe(trained=True)) is None


def test_a_character_level_tokenizer_is_named_as_such() -> None:
    problem = tokenizer_problem(_byte_level_bpe(trained=False))
    text = SAMPLES[0][0]
    assert problem is not None and problem.startswith("splits text into single characters")
    assert f"{len(text)} characters became {len(text)} tokens" in problem


def test_a_tokenizer_that_loses_text_is_refused() -> None:
    problem = tokenizer_problem(_lossy_word_level())
    assert problem is not None and "does not decode its own ids back" in problem


@pytest.mark.parametrize("version, upgrade", [("5.17.0", True), ("5.24.0", False)])
def test_the_error_names_model_problem_version_and_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       version: str, upgrade: bool) -> None:
    import transformers

    _byte_level_bpe(trained=False).save_pretrained(tmp_path)
    monkeypatch.setattr(transformers, "__version__", version)
    with pytest.raises(ModelUnsupported) as err:
        check_converted_tokenizer(tmp_path, model="gemma3-270m", field="base_model")
    text = str(err.value)
    assert text.startswith("[model_unsupported]") and "`gemma3-270m`" in text and "single characters" in text
    assert f"transformers {version}" in text
    assert ('pip install -U "transformers>=5.18"' in text) is upgrade
    assert tokenizer_check.FIRST_GOOD_TRANSFORMERS == "5.18"


def test_a_saved_real_tokenizer_passes_the_check(tmp_path: Path) -> None:
    _byte_level_bpe(trained=True).save_pretrained(tmp_path)
    check_converted_tokenizer(tmp_path, model="tiny", field="base_model")


def test_a_refused_tokenizer_leaves_no_cache_folder(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole conversion but transformers' part: the staged folder gets a model file and the
    character-level tokenizer, the check refuses it, and nothing is published."""
    gguf = settings.home / "weights.gguf"
    gguf.parent.mkdir(parents=True, exist_ok=True)
    gguf.write_bytes(b"GGUF" + b"\0" * 1000)

    def fake_convert_into(path: Path, out: Path, field: str, label: str) -> dict[str, Any]:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps({"model_type": "llama"}))
        _byte_level_bpe(trained=False).save_pretrained(out)
        check_converted_tokenizer(out, model=label, field=field)
        return {}

    monkeypatch.setattr(gguf_cache, "_convert_into", fake_convert_into)
    with pytest.raises(ModelUnsupported, match="single characters"):
        gguf_cache.convert_gguf(gguf, settings, label="my-model")
    root = gguf_cache.gguf_cache_root(settings)
    assert [p.name for p in root.iterdir() if not p.name.endswith(".lock")] == []
    assert not gguf_cache.is_converted(gguf, settings)
