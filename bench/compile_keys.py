"""Why one process misses the compiled layers another saved: diff the compile caches' key details.

Reads logs of `bench/knowledge.py run` processes started with
TORCH_LOGS=+torch._inductor.codecache,+torch._functorch._aot_autograd.autograd_cache (the `keys` step of
bench/gpu_session.sh), and prints, per log, the compile counters of its rows (FX-graph and AOTAutograd
cache hits and misses) and, for each later log, the lines of its cache-key details that differ from the
first log's (the n-th FX graph's details against the n-th, likewise for AOTAutograd's).

    python3 bench/compile_keys.py a.log b.log c.log
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path

LOG_LINE = re.compile(r"^[VIWEDC]\d{4} \d\d:\d\d:\d\d")
KINDS = {"FX graph cache hash details": "fx", "Autograd graph cache hash details": "aot"}


def key_details(text: str) -> dict[str, list[list[str]]]:
    """Each cache's key-detail blocks, in the order they were logged: the lines after a "hash details"
    header that carry the header's own log prefix (time, file:line, frame), without that prefix."""
    blocks: dict[str, list[list[str]]] = {"fx": [], "aot": []}
    current: list[str] | None = None
    prefix = ""
    for line in text.splitlines():
        if current is not None and line.startswith(prefix):
            current.append(line[len(prefix):][:400])
            continue
        current = None
        for marker, kind in KINDS.items():
            if marker in line and LOG_LINE.match(line):
                prefix = line[:line.index(marker)]
                current = []
                blocks[kind].append(current)
    return blocks


def rows(text: str) -> dict[str, dict]:
    found = {}
    for line in text.splitlines():
        if line.startswith('{"sweep') or line.startswith('{"knowledge'):
            for name, row in json.loads(line).items():
                clock = row.get("step_clock", {})
                found[name] = {"compile_counters": clock.get("compile_counters"),
                               "first_calls": clock.get("first_calls")}
    return found


def main(paths: list[str]) -> int:
    texts = {path: Path(path).read_text(errors="replace") for path in paths}
    details = {path: key_details(text) for path, text in texts.items()}
    for path, text in texts.items():
        counts = {kind: len(blocks) for kind, blocks in details[path].items()}
        print(f"== {path}: key-detail blocks {counts}")
        for name, row in rows(text).items():
            print(f"   {name}: {json.dumps(row)}")
    first = paths[0]
    for path in paths[1:]:
        for kind in ("fx", "aot"):
            for n, (mine, theirs) in enumerate(zip(details[first][kind], details[path][kind])):
                diff = [line for line in difflib.unified_diff(mine, theirs, lineterm="", n=0)
                        if not line.startswith(("---", "+++", "@@"))]
                if diff:
                    print(f"-- {kind} block {n}: {first} vs {path}: {len(diff)} lines differ")
                    print("\n".join(diff[:40]))
                else:
                    print(f"-- {kind} block {n}: {first} vs {path}: identical")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
