"""write_text_atomic: a reader never sees a torn or empty file while another writer replaces it. The
ranks of a distributed job read the state file rank 0 rewrites; a plain `write_text` there let rank 1
read an empty file (JSONDecodeError) and took the job down (seen in CI)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from graphtune.tools.dataset.atomic import write_text_atomic


def test_a_concurrent_reader_sees_only_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "run_state.json"
    write_text_atomic(path, json.dumps({"budget": 0}))
    torn: list[str] = []
    stop = threading.Event()

    def read_until_stopped() -> None:
        while not stop.is_set():
            text = path.read_text()
            try:
                json.loads(text)
            except json.JSONDecodeError:
                torn.append(text)

    reader = threading.Thread(target=read_until_stopped)
    reader.start()
    for step in range(500):  # a plain write_text gave thousands of torn reads in 3,000 rewrites here
        write_text_atomic(path, json.dumps({"budget": step, "pad": "x" * 2000}))
    stop.set()
    reader.join()
    assert torn == []
    assert json.loads(path.read_text())["budget"] == 499
    assert [p.name for p in tmp_path.iterdir()] == ["run_state.json"]  # no temp file left behind
