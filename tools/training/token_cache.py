"""Tokenized training examples, cached on disk: a second job on the same dataset and tokenizer
starts without tokenizing again (issue 21 item 3: start training within 10 s of submit).

Why: `encode_all` renders the chat template three times per assistant turn; the `email` knowledge
dataset (12.5k rows + general replay) takes several seconds of CPU per job, every job, although
the result depends only on the conversations, the tokenizer, its chat template and
max_seq_length.

Key: sha256 of the conversations themselves (dataset rows after sampling, replay rows included:
exactly what is encoded, so a changed dataset file or replay answer misses), the tokenizer's
full serialization (vocabulary, merges, normalizer, added tokens) and special tokens, the chat
template, max_seq_length, and the source of tokenize.py (a change to the encoder invalidates
every entry). Entries are .npz files (token ids and labels as int32, one offset array) written
atomically (temp file + rename) under `<base_models>/tokenized`; the newest MAX_ENTRIES are kept.
A damaged or unreadable entry is a miss; an unwritable folder only costs the next job the
tokenizing again.

    examples, report = cached_encode_all(tokenizer, conversations, max_len, token_cache_dir(settings))
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from graphtune.tools.training.tokenize import Example, TokenizeReport, encode_all

CACHE_VERSION = 1
MAX_ENTRIES = 16
_REPORT_FIELDS = ("examples", "tokens", "label_tokens", "truncated", "dropped_no_answer", "max_length")


def token_cache_dir(settings: Any) -> Path:
    return Path(settings.base_models_path) / "tokenized"


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """What decides the token ids of a text: the fast tokenizer's serialization (or, for a slow
    one, its vocabulary), its class, special tokens and chat template."""
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode())
    h.update(json.dumps({"class": type(tokenizer).__name__, "special": tokenizer.special_tokens_map,
                         "eos": tokenizer.eos_token_id, "template": getattr(tokenizer, "chat_template", None)},
                        sort_keys=True, default=str, ensure_ascii=False).encode())
    return h.hexdigest()


def cache_key(tokenizer: Any, conversations: list[list[dict[str, str]]], max_len: int, replay: bool = False) -> str:
    from graphtune.tools.training import tokenize

    h = hashlib.sha256()
    h.update(f"v{CACHE_VERSION}\0{max_len}\0{int(replay)}\0".encode())
    h.update(hashlib.sha256(Path(tokenize.__file__).read_bytes()).digest())
    h.update(tokenizer_fingerprint(tokenizer).encode())
    h.update(json.dumps(conversations, ensure_ascii=False, sort_keys=True).encode())
    return h.hexdigest()[:32]


def cached_encode_all(tokenizer: Any, conversations: list[list[dict[str, str]]], max_len: int,
                      folder: Path | None, *, replay: bool = False) -> tuple[list[Example], TokenizeReport]:
    """`encode_all`, served from / saved to the cache in `folder` (None: no cache)."""
    if folder is None or not conversations:
        return encode_all(tokenizer, conversations, max_len, replay=replay)
    path = Path(folder) / f"{cache_key(tokenizer, conversations, max_len, replay)}.npz"
    hit = _read(path, replay)
    if hit is not None:
        return hit
    examples, report = encode_all(tokenizer, conversations, max_len, replay=replay)
    _write(path, examples, report)
    return examples, report


def _read(path: Path, replay: bool) -> tuple[list[Example], TokenizeReport] | None:
    import numpy as np

    try:
        with np.load(path) as data:
            ids, labels, offsets, report = data["ids"], data["labels"], data["offsets"], data["report"]
        bounds = offsets.tolist()
        ids_list, labels_list = ids.tolist(), labels.tolist()
        examples = [Example(ids_list[a:b], labels_list[a:b], replay) for a, b in zip(bounds, bounds[1:])]
        out = TokenizeReport(**dict(zip(_REPORT_FIELDS, (int(x) for x in report.tolist()), strict=True)))
    except (OSError, ValueError, KeyError, TypeError, EOFError):  # missing, or torn: tokenize again
        return None
    if len(examples) != out.examples:
        return None
    try:
        os.utime(path)  # recently used entries survive the pruning
    except OSError:
        pass
    return examples, out


def _write(path: Path, examples: list[Example], report: TokenizeReport) -> None:
    import numpy as np

    offsets = np.zeros(len(examples) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(e) for e in examples])
    flat_ids = [t for e in examples for t in e.input_ids]
    flat_labels = [t for e in examples for t in e.labels]
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, ids=np.asarray(flat_ids, dtype=np.int32), labels=np.asarray(flat_labels, dtype=np.int32),
                     offsets=offsets, report=np.asarray([getattr(report, f) for f in _REPORT_FIELDS], dtype=np.int64))
        os.replace(tmp, path)
        tmp = None
        _prune(path.parent)
    except OSError:
        pass  # a read-only or full disk only costs the next job the tokenizing again
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _prune(folder: Path) -> None:
    entries = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[MAX_ENTRIES:]:
        old.unlink(missing_ok=True)
