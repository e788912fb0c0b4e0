"""Turn conversations into token ids with labels on the assistant answers only.

The base model's chat template formats the records. When the tokenizer has none, the
documented default below (ChatML-style, answer followed by the EOS token so the model learns
to stop) is installed on the tokenizer and saved with the adapter. A GGUF of a known family
without a template (Gemma's pretrained GGUFs) gets that family's own turn format at conversion
instead (FAMILY_CHAT_TEMPLATES): its turn markers are single tokens of its vocabulary, where
ChatML's would be plain text split into pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Gemma's turn format (as in Google's Gemma 3 template, text only): BOS, `<start_of_turn>user` /
# `<start_of_turn>model` turns closed by `<end_of_turn>`; a system message is prefixed to the first
# user turn (Gemma has no system role). `<end_of_turn>` becomes the EOS training teaches.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}"
    "{% set first_user_prefix = messages[0]['content'] + '\n\n' %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') "
    "+ message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

# GGUF general.architecture -> the turn format used when the GGUF carries no chat template.
FAMILY_CHAT_TEMPLATES: dict[str, str] = {"gemma": GEMMA_CHAT_TEMPLATE, "gemma2": GEMMA_CHAT_TEMPLATE,
                                         "gemma3": GEMMA_CHAT_TEMPLATE}


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # -100 on prompt tokens
    replay: bool = False  # a general-replay row (the base model's own answer): its answer tokens may carry a KL term
    shared_prefix: int = 0  # leading tokens a packed row may hold once for all examples starting with them

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def answer_tokens(self) -> int:
        """Labelled tokens after the first (a packed row never labels an example's first token): what
        the loss learns from this example, and for a replay row the positions its KL term reads."""
        return sum(label != -100 for label in self.labels[1:])


@dataclass
class TokenizeReport:
    examples: int
    tokens: int
    label_tokens: int
    truncated: int
    dropped_no_answer: int
    max_length: int

    def __add__(self, other: "TokenizeReport") -> "TokenizeReport":
        return TokenizeReport(self.examples + other.examples, self.tokens + other.tokens,
                              self.label_tokens + other.label_tokens, self.truncated + other.truncated,
                              self.dropped_no_answer + other.dropped_no_answer, max(self.max_length, other.max_length))


def ensure_chat_template(tokenizer: Any) -> bool:
    """Install the default template if the tokenizer has none; returns True if it did."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    if tokenizer.eos_token is None:
        tokenizer.eos_token = "<|im_end|>"
    return True


def _texts(tokenizer: Any, messages: list[dict[str, str]]) -> list[str]:
    """The chat-template renderings one conversation's labels are measured with: the whole
    conversation, then per assistant turn the conversation up to it (with the generation prompt:
    where the answer starts) and, before a later turn, up to its end."""
    def render(part: list[dict[str, str]], prompt: bool) -> str:
        return tokenizer.apply_chat_template(part, tokenize=False, add_generation_prompt=prompt)

    texts = [render(messages, False)]
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            texts.append(render(messages[:i], True))
            if i + 1 < len(messages):
                texts.append(render(messages[: i + 1], False))
    return texts


def _example(tokenizer: Any, messages: list[dict[str, str]], ids: list[list[int]]) -> Example:
    """Token ids of the whole conversation (ids[0]); labels cover every assistant turn, located by
    the lengths of the partial renderings that follow in `ids` (see _texts)."""
    full = ids[0]
    labels = [-100] * len(full)
    lengths = iter(len(part) for part in ids[1:])
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = next(lengths)
        end = next(lengths) if i + 1 < len(messages) else len(full)
        span = full[start:end]
        if tokenizer.eos_token_id in span:  # learn to stop at EOS; separators the template adds after it carry no loss
            end = start + len(span) - span[::-1].index(tokenizer.eos_token_id)
        labels[start:end] = full[start:end]
    return Example(full, labels)


def encode(tokenizer: Any, messages: list[dict[str, str]]) -> Example:
    """Token ids of the whole conversation; labels cover every assistant turn."""
    return _example(tokenizer, messages, tokenizer(_texts(tokenizer, messages), add_special_tokens=False)["input_ids"])


# conversations rendered per tokenizer call: one batched call lets a fast tokenizer encode on all
# cores and pays its Python overhead once (per-text calls were ~0.15 ms of ~0.5 ms per conversation)
ENCODE_CHUNK = 4096


def encode_all(tokenizer: Any, conversations: list[list[dict[str, str]]], max_len: int, *, replay: bool = False
               ) -> tuple[list[Example], TokenizeReport]:
    """Every conversation as `encode` makes it (the same ids and labels), tokenized in batches."""
    examples, truncated, dropped = [], 0, 0
    for first in range(0, len(conversations), ENCODE_CHUNK):
        chunk = conversations[first:first + ENCODE_CHUNK]
        texts = [_texts(tokenizer, conversation) for conversation in chunk]
        flat = tokenizer([t for group in texts for t in group], add_special_tokens=False)["input_ids"]
        offset = 0
        for conversation, group in zip(chunk, texts, strict=True):
            example = _example(tokenizer, conversation, flat[offset:offset + len(group)])
            offset += len(group)
            example.replay = replay
            if len(example) > max_len:
                truncated += 1
                example = Example(example.input_ids[:max_len], example.labels[:max_len], replay)
            if not example.answer_tokens:
                dropped += 1  # the prompt alone fills max_seq_length: nothing to learn
                continue
            examples.append(example)
    report = TokenizeReport(examples=len(examples), tokens=sum(len(e) for e in examples),
                            label_tokens=sum(e.answer_tokens for e in examples),
                            truncated=truncated, dropped_no_answer=dropped,
                            max_length=max((len(e) for e in examples), default=0))
    return examples, report


_SENTINEL = "GRAPHTUNE_END_OF_TURN_PROBE"


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an assistant turn: the first token the chat template writes after an
    assistant message (`<|im_end|>` for ChatML, `<|eot_id|>` for Llama 3, `<end_of_turn>` for
    Gemma) when it is a special token, plus the tokenizer's EOS. Generation stops at any of them;
    stopping only at EOS is what made answers run on past the end of the turn."""
    ids: list[int] = []
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": _SENTINEL}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception:  # noqa: BLE001 - a template that refuses this shape: fall back to EOS alone
        text = ""
    if _SENTINEL in text:
        tail = text.split(_SENTINEL, 1)[1]
        tail_ids = tokenizer(tail, add_special_tokens=False)["input_ids"] if tail.strip() else []
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        special |= {i for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items() if getattr(t, "special", False)}
        if tail_ids and tail_ids[0] in special:
            ids.append(tail_ids[0])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
