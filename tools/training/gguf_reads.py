"""One GGUF read per conversion instead of three, and one tensor-name map instead of hundreds.

transformers (5.x) converts a GGUF by reading it whole three times (the tokenizer's config,
the model's config, the weights), each time through a new `gguf.GGUFReader`, whose field
parsing walks the 49k-entry vocabulary element by element through numpy memmaps; and its
weight-name mapping rebuilds `gguf.get_tensor_name_map(arch, layers)` once per sub-module
(397 times for SmolLM2-135M, ~10 s of CPU). Both are pure functions of their arguments for the
length of one conversion, so `memoized_gguf_reads()` memoizes them for that long, and the one
reader reads through a plain ndarray view of its memmap (see `_plain_array_reader`). The whole
conversion of SmolLM2-135M (bench/gguf_conversion.py, fresh processes, 2 busy cores) took about
half as long, with byte-identical weights and tokenizer files.

They are patched at `gguf`'s package attributes, which transformers imports inside the
functions that use them (at call time). If a later gguf lacks either name, nothing is patched
and the conversion is only as slow as before. Worker only: imports `gguf` when entered.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PATCHED = ("GGUFReader", "get_tensor_name_map")


@contextmanager
def memoized_gguf_reads() -> Iterator[None]:
    """Within the block, `gguf.GGUFReader(path)` returns one shared reader per (path, mode) and
    `gguf.get_tensor_name_map` is cached; both are restored on exit (the readers are dropped then,
    closing their memmaps before the caller deletes a scratch file)."""
    import gguf

    originals = {name: getattr(gguf, name, None) for name in PATCHED}
    if any(value is None for value in originals.values()):
        yield
        return
    reader_class = _plain_array_reader(originals["GGUFReader"])
    readers: dict[tuple[str, str], Any] = {}

    def shared_reader(path: Any, mode: str = "r") -> Any:
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = reader_class(path, mode)
        return readers[key]

    gguf.GGUFReader = shared_reader
    gguf.get_tensor_name_map = functools.cache(originals["get_tensor_name_map"])
    try:
        yield
    finally:
        for name, value in originals.items():
            setattr(gguf, name, value)
        readers.clear()


def _plain_array_reader(reader_class: type) -> type:
    """`reader_class` reading through a plain ndarray view of its memmap: the reader makes ~3.4M
    small reads while parsing a 49k-token vocabulary, and `np.memmap`'s Python-level `__getitem__`
    and `__array_finalize__` run for each; a base-class view of the same mapping reads the same
    bytes at C speed (no copy: the view keeps the mapping alive)."""
    import numpy as np

    class PlainArrayReader(reader_class):  # type: ignore[misc, valid-type]
        @property
        def data(self) -> Any:
            return self._plain_data

        @data.setter
        def data(self, value: Any) -> None:
            self._plain_data = np.asarray(value) if isinstance(value, np.memmap) else value

    return PlainArrayReader
