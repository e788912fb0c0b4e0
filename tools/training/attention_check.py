"""Remember that flex_attention compiled and ran for an attention shape, so later jobs skip the check.

Why: before training on CUDA, `model_loading.ensure_attention_works` proves that inductor can build
flex_attention's kernels for the model (it cannot for some small head dims) with one packed
forward+backward. On an H200 that check took 11.9 s of a second SmolLM2-135M job's 16.4 s from
submit to its first step (bench/RESULTS.md, fourth session), every job, although nothing it tests
had changed. A passed check is recorded here under a key of everything the compiled kernels depend
on (torch, CUDA, transformers, the GPU, the attention shape and dtype), beside inductor's own
compiled-kernel cache: wiping that cache forgets the record too. Only passes are recorded, so a
failure (possibly transient) is checked again next time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from graphtune.tools.dataset.atomic import write_text_atomic

RECORD_NAME = "graphtune_attention_checks.json"


def attention_key(config: Any, environment: dict[str, str]) -> str:
    """A short hash of the model's attention shape and the software and GPU that compile it."""
    config = getattr(config, "text_config", None) or config
    # the config's own fields, unresolved: a missing head_dim means hidden / heads, both in the key
    shape = {name: getattr(config, name, None)
             for name in ("model_type", "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_size")}
    blob = json.dumps({"shape": shape, "environment": environment}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cuda_environment(dtype: Any) -> dict[str, str]:
    """What the compiled kernels depend on besides the model (imported only in the worker)."""
    import torch
    import transformers

    return {"torch": torch.__version__, "cuda": str(torch.version.cuda), "transformers": transformers.__version__,
            "gpu": torch.cuda.get_device_name(), "dtype": str(dtype)}


def record_file() -> Path | None:
    """The record beside inductor's cache (TORCHINDUCTOR_CACHE_DIR or its default), or None when
    this torch does not say where that is."""
    try:
        from torch._inductor.runtime.cache_dir_utils import cache_dir
    except ImportError:
        return None
    return Path(cache_dir()) / RECORD_NAME


def _recorded(path: Path) -> dict[str, Any]:
    """The passes recorded so far; none when the record is missing or unreadable (that only
    costs one check)."""
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def passed_before(key: str, path: Path | None) -> bool:
    return path is not None and key in _recorded(path)


def record_pass(key: str, path: Path | None, detail: dict[str, Any]) -> None:
    if path is None:
        return
    known = _recorded(path)
    known[key] = detail
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(known, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only cache dir: the check simply runs again next time
