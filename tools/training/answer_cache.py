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
    def __init__(self, folder: Path, base_model: str) -> None:
        self.folder, self.base_model = Path(folder), base_model

    def _path(self, kind: str, payload: Any) -> Path:
        blob = json.dumps({"base": self.base_model, "payload": payload}, sort_keys=True, ensure_ascii=False)
        return self.folder / f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:24]}.json"

    def get(self, kind: str, payload: Any) -> Any | None:
        path = self._path(kind, payload)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # missing, or torn by a crash before the rename: answer again
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
