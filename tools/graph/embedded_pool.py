"""The embedded store's buffer pool for an ingest's writer: sized to the ingest, never fatal when short.

Opening LadybugDB sets up its buffer pool's bookkeeping in proportion to the pool (8 bytes per 4 KiB
page, zeroed): with the default pool (~80 % of RAM: 19.7 GiB on a 24 GiB machine) a fresh process
opens an empty store in ~41 ms and closes it in ~18 ms, against ~20 / ~11 ms with 4 GiB; the largest
fixed cost of a small ingest after the commit. The pool is a cache the store evicts to its file, but
not all of it: a transaction's rows live in memory, unevictable, from its COPY until the checkpoint
after its commit, and the checkpoint needs more beside them. Measured minimum pools for one first
ingest (LadybugDB 0.22; ~1.4-1.5x the memory in use just before the last commit): rxjs (0.8 MB of
TypeScript) 33 MiB, stdlib `email` (0.4 MB) 33-48 MiB, Debian's /usr/lib/python3.11 (11 MB, 304k
lines) 89 MiB, the 520k-line Python tree of bench/ingest_scale.py (19 MB) 135 MiB.

A pool that proves too small must not fail the ingest, and a failure after the commit cannot be
undone: LadybugDB 0.22 does not write COPYed rows to its WAL, so a checkpoint that fails for memory
loses them when the store closes (the WAL-logged statements of the same transaction survive). So:
- before each commit, the memory in use is checked against the pool (HEADROOM_FACTOR, HEADROOM_SPARE);
  short of it, the transaction is rolled back, the store reopened with LadybugDB's default pool and
  the transaction run again (EmbeddedGraph.atomic);
- a statement that finds the pool full before its commit was rolled back by the store: the same
  reopen and one more run (a transaction again as a whole, a read or a schema step alone).
"""

from __future__ import annotations

import os
from pathlib import Path

from graphtune.tools.errors import QueryFailed

# The sized pool: bytes per byte of stored graph + source to parse, never under the floor. The floor
# alone is 30x the largest measured need above (the 520k-line tree), and opens in ~20 ms.
WRITER_POOL_FLOOR = 4 * 2**30
WRITER_POOL_PER_BYTE = 64
# A commit goes ahead on a sized pool only if the pool holds this many times the memory in use plus the
# spare: >= 3x every measured need (rxjs: 4 x 23 + 64 MiB vs 33 needed; 520k lines: 4 x 89 + 64 vs 135).
HEADROOM_FACTOR = 4
HEADROOM_SPARE = 64 * 2**20
POOL_FULL = "buffer pool is full"  # LadybugDB's BufferManagerException when no frame can be freed


class PoolTooSmall(QueryFailed):
    """A sized writer pool was found too small before a commit: nothing of the statement or
    transaction was kept, and it runs again once the store is reopened with the default pool.
    Handled inside the store; its own code in case one ever reaches a caller."""

    code = "graph_pool_too_small"


def writer_buffer_pool(path: Path, source_bytes: int) -> int:
    """Buffer pool bytes for a writer of the store at `path` that will parse `source_bytes` of source;
    0 (LadybugDB's default) where the sized pool would be no smaller than the default or RAM is unknown."""
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): keep the default
        return 0
    stored = 0
    for part in (path, path.with_name(path.name + ".wal")):
        if part.is_file():
            stored += part.stat().st_size
        elif part.is_dir():
            stored += sum(f.stat().st_size for f in part.rglob("*") if f.is_file())
    pool = max(WRITER_POOL_FLOOR, WRITER_POOL_PER_BYTE * (stored + source_bytes))
    return 0 if pool >= 0.8 * ram else pool


def short_of_headroom(in_use: int, pool: int) -> bool:
    """Whether a commit (and the checkpoint after it) could run out of a pool of `pool` bytes with
    `in_use` bytes held now (LadybugDB's `bm_info().mem_usage`, evictable pages included)."""
    return pool > 0 and HEADROOM_FACTOR * in_use + HEADROOM_SPARE > pool


def pool_full(exc: Exception) -> bool:
    return POOL_FULL in str(exc)
