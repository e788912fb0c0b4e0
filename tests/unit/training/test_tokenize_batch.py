"""encode_all tokenizes conversations in batches (one tokenizer call per chunk): the ids, labels and
report must be exactly those of encoding each conversation on its own, across chunk boundaries, for
single- and multi-turn conversations, with a system prompt, truncated and dropped ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from graphtune.tools.training import tokenize
from graphtune.tools.training.tokenize import Example, encode, encode_all, ensure_chat_template

CONVERSATIONS = [
    [{"role": "user", "content": "Where is `pkg.load` defined?"}, {"role": "assistant", "content": "In `pkg.io`."}],
    [{"role": "system", "content": "You answer about pkg."}, {"role": "user", "content": "What does load return?"},
     {"role": "assistant", "content": "A dict."}],
    [{"role": "user", "content": "Name a function."}, {"role": "assistant", "content": "`load`."},
     {"role": "user", "content": "And another?"}, {"role": "assistant", "content": "`dump`."}],
    [{"role": "user", "content": "word " * 80}, {"role": "assistant", "content": "Too long to keep whole."}],
    [{"role": "user", "content": "Only a question, no answer."}],
]


def _one_by_one(tokenizer, conversations: list, max_len: int) -> tuple[list[Example], int, int]:  # noqa: ANN001
    """(examples, truncated, dropped) the way encode_all did it before batching: one conversation at a time."""
    out, truncated, dropped = [], 0, 0
    for conversation in conversations:
        example = encode(tokenizer, conversation)
        truncated += len(example) > max_len
        example = Example(example.input_ids[:max_len], example.labels[:max_len])
        if any(label != -100 for label in example.labels[1:]):
            out.append(example)
        else:
            dropped += 1
    return out, truncated, dropped


@pytest.mark.parametrize("chunk", [1, 2, 4096])
def test_batched_encoding_equals_encoding_one_by_one(tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
                                                      chunk: int) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    ensure_chat_template(tokenizer)
    monkeypatch.setattr(tokenize, "ENCODE_CHUNK", chunk)
    conversations = CONVERSATIONS * 3
    examples, report = encode_all(tokenizer, conversations, 160)
    expected, truncated, dropped = _one_by_one(tokenizer, conversations, 160)
    assert [(e.input_ids, e.labels) for e in examples] == [(e.input_ids, e.labels) for e in expected]
    assert (report.examples, report.truncated, report.dropped_no_answer) == (len(expected), truncated, dropped)
    assert truncated >= 3 and dropped >= 3 and len(expected) >= 9  # the long and the unanswered ones are in play
    multi = encode(tokenizer, CONVERSATIONS[2])
    answers = tokenizer.decode([t for t, label in zip(multi.input_ids, multi.labels) if label != -100])
    assert "`load`." in answers and "`dump`." in answers and "And another?" not in answers
