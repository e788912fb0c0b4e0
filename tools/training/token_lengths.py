"""Per-example token lengths of a dataset, computed in the server without torch or transformers.

The synchronous dry run (issue 22: "a dry run that answers at once") needs the step count, which
needs each example's token length; importing transformers takes ~2.7 s here and pulls in torch,
so this reads the model folder's `tokenizer.json` with the Rust `tokenizers` library and renders
its chat template with jinja2 the way transformers does (sandboxed, trim_blocks, lstrip_blocks),
then encodes every example in one parallel batch. tests/integration/training/test_dry_run.py checks
the lengths equal graphtune.tools.training.tokenize.encode's.

Lengths are cached per (dataset file, tokenizer, template) under `<state>/token_lengths/`: a
second dry run of the same dataset and base model reads one small JSON file.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphtune.tools.training.tokenize import DEFAULT_CHAT_TEMPLATE

__all__ = ["Lengths", "compute_lengths", "dataset_lengths", "light_tokenizer_files", "sampled_lengths"]

CACHE_VERSION = 1
# examples tokenized inline: ~0.6 s on 2 shared cores (measured: 12.5k examples of `email` took 2.2 s to
# encode); a larger dataset is estimated from SAMPLE of them and its exact lengths cached in the background
EXACT_LIMIT = 2500
SAMPLE = 1500
_IN_FLIGHT: set[Path] = set()
_IN_FLIGHT_LOCK = threading.Lock()


@dataclass(frozen=True)
class Lengths:
    """One example: tokens of the whole conversation, tokens before its first answer, answer tokens."""

    full: int
    prompt: int
    answer: int

    def truncated(self, max_len: int) -> tuple[int, int] | None:
        """(length, answer tokens) after truncation to max_len; None when no answer token is left
        (the trainer drops such an example, see tokenize.encode_all)."""
        if self.prompt >= max_len:
            return None
        return min(self.full, max_len), min(self.answer, max_len - self.prompt)


def light_tokenizer_files(folder: Path) -> tuple[Path, str, bool] | None:
    """(tokenizer.json, chat template, default template used) of a model folder; None when it has no
    tokenizer.json (then only the worker's transformers tokenizer can count)."""
    tok = folder / "tokenizer.json"
    if not tok.is_file():
        return None
    template = None
    if (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    elif (folder / "tokenizer_config.json").is_file():
        template = _json(folder / "tokenizer_config.json").get("chat_template")
    if isinstance(template, list):  # named templates: transformers uses "default"
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    return tok, template or DEFAULT_CHAT_TEMPLATE, not template


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _special_tokens(folder: Path, tokenizer: Any, default_template: bool) -> dict[str, str | None]:
    """bos/eos as transformers sees them: tokenizer_config.json, else config.json's token ids."""
    config, tok_config = _json(folder / "config.json"), _json(folder / "tokenizer_config.json")
    out: dict[str, str | None] = {}
    for name in ("bos", "eos"):
        value = tok_config.get(f"{name}_token")
        if isinstance(value, dict):
            value = value.get("content")
        token_id = config.get(f"{name}_token_id")
        if isinstance(token_id, list):
            token_id = token_id[0] if token_id else None
        if value is None and token_id is not None:
            value = tokenizer.id_to_token(int(token_id))
        out[f"{name}_token"] = value
    if default_template and out["eos_token"] is None:
        out["eos_token"] = "<|im_end|>"  # as tokenize.ensure_chat_template
    return out


def _renderer(template: str) -> Any:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template)


def _texts(conversations: list[list[dict[str, str]]], render: Any, special: dict[str, Any]) -> list[tuple[str, str]]:
    """Per conversation: the whole text and the text up to its first answer (generation prompt on)."""
    texts = []
    for messages in conversations:
        first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), len(messages))
        texts.append((render.render(messages=messages, add_generation_prompt=False, **special),
                      render.render(messages=messages[:first], add_generation_prompt=True, **special)))
    return texts


def _answer_tokens(full: list[int], prompt: int, eos_id: int | None) -> int:
    """Labelled tokens from the first answer on, up to and including the last EOS (exact for one answer;
    a multi-turn conversation also counts the later user turns)."""
    span = full[prompt:]
    if eos_id is not None and eos_id in span:
        return len(span) - span[::-1].index(eos_id)
    return len(span)


def compute_lengths(folder: Path, conversations: list[list[dict[str, str]]]) -> list[Lengths]:
    """Exact lengths. The whole text is encoded once; the prompt's token count is read from the
    offsets (the prompt is a prefix of the whole text), which halves the encoding work."""
    from tokenizers import Tokenizer

    found = light_tokenizer_files(folder)
    if found is None:
        raise FileNotFoundError(folder / "tokenizer.json")
    tok_file, template, default_template = found
    tokenizer = Tokenizer.from_file(str(tok_file))
    special = _special_tokens(folder, tokenizer, default_template)
    eos_id = tokenizer.token_to_id(special["eos_token"]) if special["eos_token"] else None
    pairs = _texts(conversations, _renderer(template), special)
    encoded = tokenizer.encode_batch([full for full, _ in pairs], add_special_tokens=False)
    out = []
    for (full_text, prompt_text), enc in zip(pairs, encoded):
        if full_text.startswith(prompt_text):
            cut = len(prompt_text)
            prompt = sum(1 for start, _ in enc.offsets if start < cut)
        else:
            prompt = len(tokenizer.encode(prompt_text, add_special_tokens=False).ids)
        out.append(Lengths(len(enc.ids), prompt, _answer_tokens(enc.ids, prompt, eos_id)))
    return out


def sampled_lengths(folder: Path, conversations: list[list[dict[str, str]]], sample: int,
                    seed: int = 0) -> list[Lengths]:
    """Estimated lengths of a large dataset in a fixed time: `sample` examples exactly, the rest
    scaled from their characters by the sample's tokens per character."""
    import random

    chosen = sorted(random.Random(seed).sample(range(len(conversations)), sample))
    exact = dict(zip(chosen, compute_lengths(folder, [conversations[i] for i in chosen])))

    def chars(i: int) -> tuple[int, int]:
        messages = conversations[i]
        first = next((k for k, m in enumerate(messages) if m["role"] == "assistant"), len(messages))
        return sum(len(m["content"]) for m in messages), sum(len(m["content"]) for m in messages[:first])

    measured = [(chars(i), x) for i, x in exact.items()]
    full_fit = _fit([c for (c, _), _ in measured], [x.full for _, x in measured])
    prompt_fit = _fit([p for (_, p), _ in measured], [x.prompt for _, x in measured])
    out = []
    for i in range(len(conversations)):
        if i in exact:
            out.append(exact[i])
            continue
        c, p = chars(i)
        full = max(2, round(full_fit(c)))
        prompt = min(full - 1, max(1, round(prompt_fit(p))))
        out.append(Lengths(full, prompt, full - prompt))
    return out


def _fit(xs: list[int], ys: list[int]) -> Any:
    """Least-squares line y = a*x + b (tokens from characters; b: the chat template's own tokens)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else (my / mx if mx else 0.0)
    return lambda x: slope * x + (my - slope * mx)


def _cache_key(train: Path, folder: Path) -> str:
    parts = []
    for path in (train, folder / "tokenizer.json", folder / "chat_template.jinja", folder / "tokenizer_config.json",
                 folder / "config.json"):
        if path.is_file():
            stat = path.stat()
            parts.append(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return hashlib.sha256(f"{CACHE_VERSION}\0{'|'.join(parts)}".encode()).hexdigest()[:24]


def _read_cache(cache: Path) -> list[Lengths] | None:
    if not cache.is_file():
        return None
    try:
        return [Lengths(*row) for row in json.loads(cache.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
        return None  # a damaged cache file is recomputed


def _write_cache(cache: Path, lengths: list[Lengths]) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps([[x.full, x.prompt, x.answer] for x in lengths]), encoding="utf-8")
        tmp.replace(cache)
    except OSError:
        pass  # a read-only state dir only costs the next dry run the tokenizing again


def _exact_in_background(cache: Path, folder: Path, conversations: list[list[dict[str, str]]]) -> None:
    """Fill the cache with exact lengths after the reply (the next dry run is exact and instant)."""
    with _IN_FLIGHT_LOCK:
        if cache in _IN_FLIGHT:
            return
        _IN_FLIGHT.add(cache)

    def work() -> None:
        try:
            _write_cache(cache, compute_lengths(folder, conversations))
        except Exception:  # noqa: BLE001 - best effort: the dry run already answered from a sample
            pass
        finally:
            with _IN_FLIGHT_LOCK:
                _IN_FLIGHT.discard(cache)

    threading.Thread(target=work, name="graphtune-token-lengths", daemon=True).start()


def dataset_lengths(train: Path, folder: Path, cache_dir: Path) -> tuple[list[Lengths], str]:
    """Lengths of every example in `train` for the tokenizer in `folder`, and how they were found:
    `cached` or `exact` (every example tokenized), or `sampled` (a large dataset: SAMPLE examples
    exactly, the rest from their characters, while a background thread caches the exact lengths)."""
    from graphtune.tools.training.data_files import read_conversations

    cache = cache_dir / f"{_cache_key(train, folder)}.json"
    cached = _read_cache(cache)
    if cached is not None:
        return cached, "cached"
    conversations = read_conversations(train)
    if len(conversations) <= EXACT_LIMIT:
        lengths = compute_lengths(folder, conversations)
        _write_cache(cache, lengths)
        return lengths, "exact"
    _exact_in_background(cache, folder, conversations)
    return sampled_lengths(folder, conversations, SAMPLE), "sampled"
