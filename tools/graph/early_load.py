"""Load the first part of a big ingest into the store while the parser processes parse the rest.

Why: the ingest's store work all ran after the last file was parsed, in the one process that holds
the store, with the other core idle (0.5M lines of Python: COPY ~1 s of a ~2.7 s tail). The
store's COPY runs in C++ with the GIL released, so a thread can run it while the main thread keeps
receiving parsed files: the first `EARLY_FRACTION` of the source (by bytes, in file order) is loaded
as soon as it has arrived, in its own transaction, and only the rest is loaded after parsing.

One early load per ingest, only for inputs of `EARLY_MIN_BYTES` or more: each extra load costs a
commit, and COPYs into non-empty tables cost more than into empty ones, which a small input cannot
win back. The rows are the same, loaded in the same file order (tests/unit/graph/test_ingest_scale.py
compares graphs loaded in one batch and in many).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

EARLY_MIN_BYTES = 8 * 2**20
EARLY_FRACTION = 0.65  # the early COPY (slowed by the parsers beside it) still ends before the parsing


class EarlyLoad:
    """At most one background `writer.load`; the caller must `wait()` before it touches the store
    again (a load, a query, closing it): the writer is not used from two threads at once."""

    def __init__(self, writer: Any, patterns: dict[str, dict[str, str]], total_bytes: int) -> None:
        self.writer, self.patterns = writer, patterns
        self.threshold = int(total_bytes * EARLY_FRACTION) if total_bytes >= EARLY_MIN_BYTES else None
        self.future: Future[None] | None = None

    def due(self, consumed_bytes: int) -> bool:
        """Whether the files received so far (`consumed_bytes` of source) should be loaded now."""
        return self.threshold is not None and consumed_bytes >= self.threshold

    def start(self, batch: list[Any]) -> None:
        """Load `batch` on a thread (once: the threshold is spent)."""
        self.threshold = None
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-early-load")
        self.future = pool.submit(self._load, batch)
        pool.shutdown(wait=False)

    def _load(self, batch: list[Any]) -> None:
        """The load, its commit without a checkpoint: the checkpoint after the early load made the
        last one slower (~0.6 -> ~0.95 s for 0.5M lines: it rewrote what the first had just written);
        one checkpoint after the last commit covers both. Later loads checkpoint as before."""
        self.writer.defer_checkpoint()
        try:
            self.writer.load(batch, self.patterns)
        finally:
            self.writer.defer_checkpoint(False)

    def wait(self) -> None:
        """Wait for the background load, if any; its error is raised here."""
        pending, self.future = self.future, None
        if pending is not None:
            pending.result()
