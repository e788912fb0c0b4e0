"""Base-model resolution, list_base_models, ask_model refusals and the generation module (tiny model).

Fast: no real model here (tests/integration/training/test_real_model.py converts the real GGUF once per session)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from graphtune.tools.errors import GenerationTimeout, ModelNotFound, ModelUnsupported
from graphtune.tools.training.base_models import (
    BUILTINS,
    check_base_model,
    gguf_cache_dir,
    gguf_cache_root,
    read_gguf_architecture,
    resolve_base_model,
)

BUILTIN = BUILTINS["smollm2-135m-instruct"]
needs_builtin = pytest.mark.skipif(BUILTIN.path() is None, reason=f"built-in model not installed ({BUILTIN.install})")


def write_fake_gguf(path: Path, architecture: str = "notarealarch") -> Path:
    """A small, valid GGUF file of an architecture transformers does not know."""
    import gguf
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_check_base_model_refuses_bad_inputs_with_codes(tmp_path) -> None:
    with pytest.raises(ModelNotFound) as missing:
        check_base_model(str(tmp_path / "absent.gguf"))
    assert "[model_not_found]" in str(missing.value) and "base_model" in str(missing.value)
    not_gguf = tmp_path / "text.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(ModelUnsupported, match=r"\[model_unsupported\].*not a GGUF"):
        check_base_model(str(not_gguf))
    with pytest.raises(ModelNotFound, match="list_base_models"):
        check_base_model("no such model")
    fake = write_fake_gguf(tmp_path / "fake.gguf")
    assert check_base_model(str(fake)) == str(fake.resolve())  # cheap check: the header is fine
    assert read_gguf_architecture(fake) == "notarealarch"
    assert read_gguf_architecture(not_gguf) is None


@needs_builtin
def test_builtin_name_points_at_the_packaged_gguf(settings) -> None:
    assert check_base_model("SmolLM2-135M-Instruct") == "smollm2-135m-instruct"  # names are case-insensitive
    path = BUILTIN.path()
    assert path.name == BUILTIN.filename and path.is_file()
    assert read_gguf_architecture(path) == "llama"
    assert check_base_model(str(path.parent / ".." / path.parent.name / path.name)) == str(path.resolve())
    # the cache key follows the file: a changed mtime means a new conversion folder
    copy = settings.home / "copy.gguf"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(path.read_bytes()[:4096])
    before = gguf_cache_dir(copy, settings)
    import os

    os.utime(copy, ns=(1_000_000_000, 1_000_000_000))
    assert gguf_cache_dir(copy, settings) != before


def test_unsupported_gguf_is_a_coded_error_and_leaves_no_cache_folder(settings) -> None:
    fake = write_fake_gguf(settings.home / "base_models" / "weird.gguf")
    with pytest.raises(ModelUnsupported) as err:
        resolve_base_model(str(fake), settings)
    text = str(err.value)
    assert "[model_unsupported]" in text and "notarealarch" in text and "llama" in text  # hint lists what works
    leftovers = [p.name for p in gguf_cache_root(settings).iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


@pytest.mark.anyio
async def test_list_base_models_through_mcp(client, services, tmp_path, monkeypatch) -> None:
    settings = services.settings
    write_fake_gguf(settings.base_models_path / "custom.gguf", architecture="llama")
    merged = settings.models_dir / "memo-merged"
    merged.mkdir(parents=True)
    (merged / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (merged / "model.safetensors").write_bytes(b"x" * 10)
    hub = tmp_path / "hub"
    snap = hub / "models--org--tiny-lm" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps({"architectures": ["Qwen2ForCausalLM"]}))
    (snap / "model.safetensors").write_bytes(b"y" * 10)
    encoder = hub / "models--org--bert" / "snapshots" / "abc"
    encoder.mkdir(parents=True)
    (encoder / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))

    result = await client.call_tool("list_base_models", {})
    assert not result.is_error, result.content[0].text
    entries = {e["base_model"]: e for e in result.structured_content["base_models"]}
    builtin = entries["smollm2-135m-instruct"]
    assert builtin["kind"] == "builtin" and builtin["installed"] == (BUILTIN.path() is not None)
    gguf_entry = entries[str(settings.base_models_path / "custom.gguf")]
    assert gguf_entry["kind"] == "gguf" and gguf_entry["architecture"] == "llama" and gguf_entry["converted"] is False
    assert entries[str(merged)]["kind"] == "merged" and entries[str(merged)]["usable_offline"]
    assert entries["org/tiny-lm"]["kind"] == "hub_cache" and entries["org/tiny-lm"]["usable_offline"]
    assert "org/bert" not in entries  # not a causal LM
    only = await client.call_tool("list_base_models", {"kind": "hub_cache"})
    assert [e["base_model"] for e in only.structured_content["base_models"]] == ["org/tiny-lm"]

    from graphtune.tools.environment import base_model_check

    check, briefs = base_model_check(settings)
    assert check.name == "base_models" and {b.base_model for b in briefs} >= {"org/tiny-lm", str(merged)}


@pytest.mark.anyio
async def test_ask_model_refuses_unknown_models_before_queueing(client, services) -> None:
    result = await client.call_tool("ask_model", {"prompt": "hi", "model": "no-such-model"})
    text = result.content[0].text
    assert result.is_error and "[model_not_found]" in text and "`model`" in text and "list_models" in text
    result = await client.call_tool("ask_model", {"prompt": "hi", "model": "/nowhere/at/all.gguf"})
    assert result.is_error and "[model_not_found]" in result.content[0].text
    result = await client.call_tool("ask_model", {"prompt": "hi", "model": "smollm2-135m-instruct", "compare": True})
    assert result.is_error and "compare" in result.content[0].text and "list_models" in result.content[0].text
    result = await client.call_tool("ask_model", {"prompt": "hi", "model": "smollm2-135m-instruct",
                                                  "max_new_tokens": 5000})
    assert result.is_error and "max_new_tokens" in result.content[0].text
    result = await client.call_tool("start_fine_tuning", {"dataset_name": "x", "base_model": "/nowhere/model.gguf"})
    assert result.is_error
    assert services.store.list(kind="ask")[1] == 0  # nothing was queued


# --- the generation module on a tiny random model (fast) --------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_model import create_tiny_model

    texts = ["What does pkg.add return?", "It returns the sum.", "Where is pkg.load defined?"] * 20
    return create_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny", texts, vocab_size=300, hidden=32)


def test_generation_batches_match_single_prompts_and_respect_deadlines(tiny, settings) -> None:
    from graphtune.tools.training.generation import generate_chat, generate_chat_detailed, load_for_inference

    model, tokenizer = load_for_inference(str(tiny), None, "cpu", settings)
    assert tokenizer.padding_side == "left" and not model.training
    chats = [[{"role": "user", "content": q}] for q in ("What does pkg.add return?", "Where?", "pkg.load defined")]
    batched = generate_chat_detailed(model, tokenizer, chats, max_new_tokens=8, batch_size=3)
    single = [generate_chat_detailed(model, tokenizer, [c], max_new_tokens=8)[0] for c in chats]
    assert [g.text for g in batched] == [g.text for g in single]  # left padding changes nothing
    assert all(0 < g.new_tokens <= 8 for g in batched)
    assert all(g.ended_cleanly or g.new_tokens == 8 for g in batched)
    assert generate_chat(model, tokenizer, chats[:1], max_new_tokens=8) == [batched[0].text]
    assert generate_chat(model, tokenizer, [], max_new_tokens=8) == []

    with pytest.raises(GenerationTimeout) as late:
        generate_chat_detailed(model, tokenizer, chats, max_new_tokens=8, deadline=time.time() - 1)
    assert late.value.code == "generation_timeout" and late.value.partial == [None, None, None]
    running = [c for c, g in zip(chats, batched) if not g.ended_cleanly]  # answers that do not stop early
    if running:  # the deadline also stops decoding mid-batch
        started = time.time()
        try:
            done = generate_chat_detailed(model, tokenizer, running[:1], max_new_tokens=3000, deadline=started + 0.3)
        except GenerationTimeout as cut:
            assert len(cut.partial) == 1 and "deadline" in cut.message
            assert time.time() - started < 10
        else:
            assert done[0].ended_cleanly  # it stopped by itself before the deadline


def test_gguf_reads_are_shared_within_a_conversion_and_restored_after(tmp_path) -> None:
    import gguf

    from graphtune.tools.training.gguf_reads import memoized_gguf_reads

    fake = write_fake_gguf(tmp_path / "fake.gguf", architecture="llama")
    reader_class, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with memoized_gguf_reads():
        first, again = gguf.GGUFReader(fake), gguf.GGUFReader(str(fake))
        assert first is again and isinstance(first, reader_class)
        assert gguf.GGUFReader(fake, "r+") is not first  # another mode is another reader
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2) is gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
        assert first.fields["general.architecture"].contents() == "llama"
    assert gguf.GGUFReader is reader_class and gguf.get_tensor_name_map is name_map
    assert gguf.GGUFReader(fake) is not gguf.GGUFReader(fake)


def write_tiny_llama_gguf(path: Path, merges: list[str]) -> Path:
    """A llama GGUF transformers converts in ~2 s: one 16-wide layer and a byte-level BPE vocabulary
    of the 256 byte symbols plus `merges` (few merges: it splits text into near-single characters)."""
    import gguf
    import numpy as np
    from tokenizers import pre_tokenizers

    tokens = sorted(pre_tokenizers.ByteLevel.alphabet()) + [m.replace(" ", "") for m in merges] + ["<|endoftext|>"]
    vocab, dim, ff = len(tokens), 16, 32
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(64), writer.add_embedding_length(dim), writer.add_block_count(1)
    writer.add_feed_forward_length(ff), writer.add_head_count(2), writer.add_head_count_kv(2)
    writer.add_rope_dimension_count(dim // 2), writer.add_layer_norm_rms_eps(1e-5), writer.add_vocab_size(vocab)
    writer.add_tokenizer_model("gpt2"), writer.add_tokenizer_pre("default"), writer.add_token_list(tokens)
    writer.add_token_types([1] * (vocab - 1) + [3]), writer.add_token_merges(merges)
    writer.add_bos_token_id(vocab - 1), writer.add_eos_token_id(vocab - 1)
    rng = np.random.default_rng(0)
    shapes = {"token_embd": (vocab, dim), "output": (vocab, dim), "blk.0.attn_q": (dim, dim), "blk.0.attn_k": (dim, dim),
              "blk.0.attn_v": (dim, dim), "blk.0.attn_output": (dim, dim), "blk.0.ffn_gate": (ff, dim),
              "blk.0.ffn_up": (ff, dim), "blk.0.ffn_down": (dim, ff)}
    for name, shape in shapes.items():
        writer.add_tensor(f"{name}.weight", (rng.standard_normal(shape) * 0.02).astype(np.float32))
    for name in ("output_norm", "blk.0.attn_norm", "blk.0.ffn_norm"):
        writer.add_tensor(f"{name}.weight", np.ones(dim, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_gguf_whose_tokenizer_converts_to_characters_is_refused_and_not_cached(settings) -> None:
    """transformers converts it without complaint (as 5.17 did Gemma's); the check on the written
    tokenizer refuses it before the folder is published."""
    tiny = write_tiny_llama_gguf(settings.home / "base_models" / "tiny.gguf", merges=["Ġ t", "h e", "Ġt he"])
    with pytest.raises(ModelUnsupported) as err:
        resolve_base_model(str(tiny), settings)
    text = str(err.value)
    assert "tokenizer converted from" in text and str(tiny) in text and "tokens" in text and "transformers" in text
    leftovers = [p.name for p in gguf_cache_root(settings).iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []
