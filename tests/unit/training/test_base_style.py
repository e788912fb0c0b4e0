"""A base without a chat template of its own (a pretrained GGUF such as Gemma 3 270M's) answers the
general-replay prompts as plain text, one line each; those rows train without the KL-to-base term.
Chat models (the tiny fixture, SmolLM2) keep the chat-format replay and its cache keys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from graphtune.tools.training.base_style import has_own_chat_template
from graphtune.tools.training.gguf_cache import SOURCE_FILE
from graphtune.tools.training.general_replay import (
    CHAT_DECODING,
    COMPLETION_DECODING,
    ReplaySet,
    replay_conversations,
)


def _template_less_copy(tiny_model: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "pretrained"
    shutil.copytree(tiny_model, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def test_the_folder_says_whether_the_base_model_chats(tiny_model: Path, tmp_path: Path) -> None:
    assert has_own_chat_template(tiny_model)
    assert not has_own_chat_template(_template_less_copy(tiny_model, tmp_path))
    converted = tmp_path / "converted"
    converted.mkdir()
    for source, chats in (("gguf", True), ("gemma3 family default (the GGUF has none)", False)):
        (converted / SOURCE_FILE).write_text(json.dumps({"chat_template_source": source}))
        assert has_own_chat_template(converted) is chats
    (converted / SOURCE_FILE).write_text(json.dumps({"chat_template": True}))  # converted before the key existed
    assert has_own_chat_template(converted)
    assert has_own_chat_template("org/some-hub-model")


class _ScriptedModel:
    """A stand-in whose greedy continuation is fixed: the line-break cut is what is under test."""

    def __init__(self, continuation: list[int]) -> None:
        import torch

        self.continuation = torch.tensor(continuation)
        self.generation_config = SimpleNamespace(eos_token_id=None)
        self._weight = torch.zeros(1)

    def parameters(self) -> Any:
        return iter([self._weight])

    def generate(self, input_ids: Any, **kwargs: Any) -> Any:
        import torch

        return torch.cat([input_ids, self.continuation.expand(input_ids.shape[0], -1)], dim=1)


def test_plain_text_answers_end_at_the_first_line_break(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    from graphtune.tools.training.generation import generate_completions, line_break_ids

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.padding_side = "left"
    breaks = line_break_ids(tokenizer)
    assert tokenizer("\n", add_special_tokens=False)["input_ids"][0] in breaks
    assert not breaks & set(tokenizer(" the answer", add_special_tokens=False)["input_ids"])
    ended = tokenizer(" the answer\nQuestion: more", add_special_tokens=False)["input_ids"]
    got = generate_completions(_ScriptedModel(ended), tokenizer, ["Question: a?\nAnswer:", "Question: b b?\nAnswer:"],
                               max_new_tokens=32)
    assert [(g.text, g.ended_cleanly) for g in got] == [("the answer", True)] * 2
    late = tokenizer("\n\n the answer\nQuestion: more", add_special_tokens=False)["input_ids"]
    got = generate_completions(_ScriptedModel(late), tokenizer, ["Question: a?\nAnswer:"], max_new_tokens=32)
    assert (got[0].text, got[0].ended_cleanly) == ("the answer", True)  # breaks before any text are skipped
    running = tokenizer(" the answer goes on", add_special_tokens=False)["input_ids"]
    cut = generate_completions(_ScriptedModel(running), tokenizer, ["Question: a?\nAnswer:"], max_new_tokens=3)
    assert not cut[0].ended_cleanly  # runs past its budget: never replayed


def test_a_base_without_a_chat_template_is_asked_as_plain_text(tiny_model: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from graphtune.tools.training import train_job
    from graphtune.tools.training.generation import Generation

    asked: dict[str, list[str]] = {"chat": [], "plain": []}

    def plain(model: Any, tokenizer: Any, prompts: list[str], **kwargs: Any) -> list[Generation]:
        asked["plain"] += prompts
        return [Generation("Paris.", True, 3) for _ in prompts]

    def chat(model: Any, tokenizer: Any, conversations: list[Any], **kwargs: Any) -> list[Generation]:
        asked["chat"] += [c[-1]["content"] for c in conversations]
        return [Generation("Paris.", True, 3) for _ in conversations]

    monkeypatch.setattr(train_job, "generate_completions", plain)
    monkeypatch.setattr(train_job, "generate_chat_detailed", chat)
    monkeypatch.setattr(train_job, "load_for_inference", lambda *a, **k: (None, None))
    ctx = SimpleNamespace(settings=SimpleNamespace(base_models_path=tmp_path / "models"),
                          progress=lambda *a, **k: None)
    got = train_job._replay_source(None, ctx, str(_template_less_copy(tiny_model, tmp_path)), "cpu")(5)
    assert got.decoding == COMPLETION_DECODING and not got.takes_kl and len(got.conversations) == 5
    assert asked["chat"] == [] and all(p.startswith("Question: ") and p.endswith("\nAnswer:") for p in asked["plain"])
    assert all(c[1]["content"] == "Paris." for c in got.conversations)  # trained in the chat format
    chat_got = train_job._replay_source(None, ctx, str(tiny_model), "cpu")(5)
    assert chat_got.decoding == CHAT_DECODING and chat_got.takes_kl and len(asked["chat"]) == 5


def test_answers_asked_one_way_are_never_served_for_the_other(tmp_path: Path) -> None:
    from graphtune.tools.training.answer_cache import AnswerCache
    from graphtune.tools.training.generation import Generation

    cache = AnswerCache(tmp_path, "base")

    def answer(text: str) -> Any:
        return lambda conversations: [Generation(text, True, 2) for _ in conversations]

    chat = replay_conversations(3, cache=cache, answer=answer("chat answer"))
    plain = replay_conversations(3, cache=cache, answer=answer("plain answer"), decoding=COMPLETION_DECODING)
    assert {c[1]["content"] for c in chat} == {"chat answer"} and {c[1]["content"] for c in plain} == {"plain answer"}


def test_plain_text_replay_rows_carry_no_kl(tiny_model: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from graphtune.tools.training.config import LoraJobConfig
    from graphtune.tools.training.train_job import _prepare_data

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Where is f{i}?"},
                                                     {"role": "assistant", "content": f"In m{i}."}]}) + "\n"
                            for i in range(6)), encoding="utf-8")
    rows = [[{"role": "user", "content": f"Tell me a fact {i}."}, {"role": "assistant", "content": "Water."}]
            for i in range(2)]
    cfg = LoraJobConfig.from_dict({"dataset_name": str(data), "base_model": "tiny", "general_replay": 0.25,
                                   "max_seq_length": 64})
    settings = SimpleNamespace(datasets_dir=tmp_path / "datasets", base_models_path=tmp_path / "models")
    got = _prepare_data(cfg, settings, tokenizer, lambda n: ReplaySet(rows[:n], COMPLETION_DECODING))
    assert [e.replay for e in got["train"]] == [False] * 8  # trained, but no KL toward the base's chat noise
    assert got["general_replay"]["rows"] == 2 and got["general_replay"]["kl_to_base"] == 0.0
    assert got["general_replay"]["answers"].startswith("plain text")


def test_the_model_card_says_when_the_base_never_chatted() -> None:
    """A pretrained base's general-ability figure is measured in a chat format it never saw: the card
    says so for such a model, and only for it."""
    from graphtune.tools.training.artifacts import model_card
    from graphtune.tools.training.general_replay import CHAT_ANSWERS, PLAIN_TEXT_ANSWERS

    config = {"method": "lora", "lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear",
              "learning_rate": 1e-3, "num_epochs": 1}
    general = {"questions": 2, "base": {"accuracy": 0.0}, "tuned": {"accuracy": 0.5}}
    meta = {"config": config, "base_model": "gemma3-270m", "name": "m", "graphtune_version": "0", "steps": 1,
            "dataset": {"name": "d"}, "tokens_trained": 10, "hardware": {"device": "cpu"}, "duration_seconds": 1.0,
            "knowledge": {"probes": 1, "dataset": "d", "base": {}, "tuned": {"probes": 1, "accuracy": 1.0},
                          "general": general}}
    never = "has no chat template of its own"
    plain = model_card({**meta, "general_replay": {"answers": PLAIN_TEXT_ANSWERS}})
    chat = model_card({**meta, "general_replay": {"answers": CHAT_ANSWERS}})
    assert never in plain and "| **general ability** (everyday questions) | 2 | 0.0 % | 50.0 % |" in plain
    assert never not in chat and never not in model_card(meta)
