"""What can be passed as `base_model` here: built-ins, GGUF files and model folders under the
data dir, and models in the Hugging Face cache. File-system reads only (no torch, no network),
bounded in depth and count so a large home folder cannot make the listing slow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from graphtune.tools.training.base_models import (
    BUILTINS,
    CACHE_FOLDER,
    gguf_cache_dir,
    hub_cache_dir,
    hub_offline,
    is_converted,
    read_gguf_architecture,
)
from pydantic import BaseModel, Field

MAX_DEPTH = 3
MAX_ENTRIES = 500
SKIP_DIRS = {"datasets", "node_modules", "__pycache__", CACHE_FOLDER}


class BaseModelEntry(BaseModel):
    base_model: str = Field(description="The exact string to pass as `base_model` (or `model` in ask_model).")
    kind: Literal["builtin", "gguf", "folder", "merged", "hub_cache"]
    size_bytes: int | None = None
    size: str | None = Field(None, description="Human-readable size.")
    usable_offline: bool = Field(description="Loads without network access now.")
    installed: bool = True
    architecture: str | None = None
    converted: bool | None = Field(None, description="GGUF only: already converted into the cache (no wait).")
    note: str | None = None


def human(size: int | None) -> str | None:
    if size is None:
        return None
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return None


def _folder_size(folder: Path) -> int:
    total = 0
    for entry in folder.iterdir():
        try:
            if entry.is_file():
                total += entry.stat().st_size  # follows links: the hub cache links snapshots to blobs
        except OSError:
            continue
    return total


def _architecture(config: Path) -> str | None:
    try:
        archs = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError):
        return None
    return archs[0] if archs else None


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin")) or any(folder.glob("*.safetensors.index.json"))


def builtins(settings: Any) -> list[BaseModelEntry]:
    out = []
    for builtin in BUILTINS.values():
        source = builtin.source()
        size = source.size if source else None
        out.append(BaseModelEntry(base_model=builtin.name, kind="builtin", size_bytes=size, size=human(size),
                                  usable_offline=source is not None, installed=source is not None,
                                  architecture=builtin.architecture,
                                  converted=is_converted(source, settings) if source else None,
                                  note=f"{builtin.description} License {builtin.license}."
                                  + ("" if source else f" Not installed: {builtin.install}")))
    return out


def _walk(root: Path) -> list[Path]:
    """Folders under root (itself included), depth-limited, hidden and data folders skipped."""
    found, stack = [], [(root, 0)]
    while stack and len(found) < MAX_ENTRIES:
        folder, depth = stack.pop()
        found.append(folder)
        if depth >= MAX_DEPTH:
            continue
        try:
            children = sorted(c for c in folder.iterdir() if c.is_dir() and not c.is_symlink())
        except OSError:
            continue
        stack += [(c, depth + 1) for c in reversed(children) if not c.name.startswith(".") and c.name not in SKIP_DIRS]
    return found


def local(settings: Any) -> list[BaseModelEntry]:
    """GGUF files and model folders (config.json + weights) under the data dir and base_models dir."""
    roots = [settings.home]
    if settings.base_models_path != settings.home and not settings.base_models_path.is_relative_to(settings.home):
        roots.append(settings.base_models_path)
    out: list[BaseModelEntry] = []
    seen: set[Path] = set()
    for root in roots:
        if not root.is_dir():
            continue
        for folder in _walk(root):
            if folder in seen:
                continue
            seen.add(folder)
            if (folder / "config.json").is_file() and _has_weights(folder):
                merged = folder.parent == settings.models_dir
                out.append(BaseModelEntry(base_model=str(folder), kind="merged" if merged else "folder",
                                          size_bytes=(size := _folder_size(folder)), size=human(size),
                                          usable_offline=True, architecture=_architecture(folder / "config.json"),
                                          note="merged model (merge_adapter)" if merged else None))
            try:
                files = sorted(f for f in folder.glob("*.gguf") if f.is_file())
            except OSError:
                continue
            for gguf in files:
                architecture = read_gguf_architecture(gguf)
                converted = is_converted(gguf, settings)
                out.append(BaseModelEntry(
                    base_model=str(gguf), kind="gguf", size_bytes=(size := gguf.stat().st_size), size=human(size),
                    usable_offline=architecture is not None, architecture=architecture, converted=converted,
                    note=f"converted: {gguf_cache_dir(gguf, settings)}" if converted
                    else None if architecture else "not a readable GGUF file"))
    return out


def hub_cached() -> list[BaseModelEntry]:
    """Models in the Hugging Face cache (HF_HUB_CACHE / HF_HOME) with a config and weights."""
    cache = hub_cache_dir()
    if not cache.is_dir():
        return []
    out = []
    for repo in sorted(cache.glob("models--*"))[:MAX_ENTRIES]:
        snapshots = [s for s in (repo / "snapshots").glob("*") if (s / "config.json").is_file()] \
            if (repo / "snapshots").is_dir() else []
        if not snapshots:
            continue
        snapshot = max(snapshots, key=lambda s: s.stat().st_mtime)
        architecture = _architecture(snapshot / "config.json")
        if architecture and not architecture.endswith(("ForCausalLM", "ForConditionalGeneration")):
            continue  # encoders, classifiers...: not something to fine-tune as a chat model
        weights = _has_weights(snapshot)
        blobs = repo / "blobs"
        size = sum(b.stat().st_size for b in blobs.iterdir() if b.is_file()) if blobs.is_dir() else None
        repo_id = repo.name[len("models--"):].replace("--", "/", 1)
        out.append(BaseModelEntry(base_model=repo_id, kind="hub_cache", size_bytes=size, size=human(size),
                                  usable_offline=weights, architecture=architecture,
                                  note=None if weights else "config only: weights not downloaded"))
    return out


def inventory(settings: Any) -> list[BaseModelEntry]:
    """Every base model graphtune can see, built-ins first."""
    return builtins(settings) + local(settings) + hub_cached()


def offline_note() -> str:
    return ("HF_HUB_OFFLINE is set: only the entries marked usable_offline load." if hub_offline()
            else "Hub ids not listed here download on first use (network needed).")
