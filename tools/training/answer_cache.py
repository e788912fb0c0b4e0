"""The base model's greedy answers, cached on disk: they depend only on the base model, the
questions and the decoding settings, so every later job on the same base reuses them.

Why: a knowledge job answers its probes and the general-ability questions with the base
model *and* the tuned one; the base half is the same in every job on the same base model
and dataset (measured: ~40 s of an `email` job on an H200), and the general replay set is
the base model's own answers, made once per base model.

    cache = AnswerCache(settings.base_models_path / "answers", base)
    rows = cache.get("probes", payload)        # None on a miss
    cache.put("probes", payload, rows)         # atomic write
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


class AnswerCache:
    """`base_model` names the model in each key. A model inside the data dir (a GGUF's conversion under
    base_models/, whose folder name carries the GGUF's hash) is named by its path relative to the cache's
    parent folder, so a data dir that moves (another GRAPHTUNE_HOME, a volume mounted elsewhere) keeps
    its answers; entries keyed by the absolute path, as before, are still read."""

    def __init__(self, folder: Path, base_model: str) -> None:
        self.folder = Path(folder)
        self._keys = [base_model]
        if not Path(base_model).is_absolute():  # a hub id or a built-in name: the same everywhere
            return
        try:
            inside = Path(base_model).resolve().relative_to(self.folder.resolve().parent)
        except (ValueError, OSError):  # a model outside the data dir
            return
        self._keys = [f"<data dir>/{inside.as_posix()}", base_model]

    def _path(self, kind: str, payload: Any, base: str | None = None) -> Path:
        blob = json.dumps({"base": base or self._keys[0], "payload": payload}, sort_keys=True, ensure_ascii=False)
        return self.folder / f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:24]}.json"

    def get(self, kind: str, payload: Any) -> Any | None:
        for base in self._keys:
            try:
                return json.loads(self._path(kind, payload, base).read_text(encoding="utf-8"))
            except (OSError, ValueError):  # missing, or torn by a crash before the rename: answer again
                continue
        return None

    def put(self, kind: str, payload: Any, value: Any) -> None:
        path = self._path(kind, payload)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(value, handle, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
