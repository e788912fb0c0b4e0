"""The ingest's parse pool: biggest files first inside each window, results in input order."""

from __future__ import annotations

import gc
import random

import pytest
from graphtune.tools.graph.parse_pool import WINDOW_FILES, _run_chunk, ordered_map, plan_chunks


def test_results_come_back_in_input_order_over_several_windows() -> None:
    items = list(range(2 * WINDOW_FILES + 37))
    sizes = [random.Random(i).randint(1, 100_000) for i in items]
    assert list(ordered_map(str, items, sizes, workers=2)) == [str(i) for i in items]


def test_chunks_cover_every_item_once_biggest_first() -> None:
    sizes = [5, 900, 40, 7_000, 1, 300]
    chunks = plan_chunks(sizes, 2)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(len(sizes)))
    assert chunks[0][0] == 3  # the biggest file is scheduled first


def test_an_error_in_a_worker_reaches_the_consumer() -> None:
    items = ["1", "2", "x", "4"] * 20
    with pytest.raises(ValueError):
        list(ordered_map(int, items, [1] * len(items), workers=2))


def _collector_state(item: int) -> tuple[int, bool]:
    return item, gc.isenabled()


def test_a_chunk_runs_with_the_collector_paused_and_puts_it_back() -> None:
    assert gc.isenabled()
    assert _run_chunk(_collector_state, [1, 2]) == [(1, False), (2, False)]
    assert gc.isenabled()
    with pytest.raises(ValueError):
        _run_chunk(int, ["x"])
    assert gc.isenabled()
    gc.disable()
    try:  # a process that had it off keeps it off
        _run_chunk(int, ["1"])
        assert not gc.isenabled()
    finally:
        gc.enable()
    items = list(range(100))
    assert list(ordered_map(_collector_state, items, [1] * 100, workers=2)) == [(i, False) for i in items]
