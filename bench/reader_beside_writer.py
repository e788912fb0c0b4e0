"""What a read-only LadybugDB reader sees while an ingest writes (the reason readers wait).

LadybugDB lets read-only opens run beside the one read-write process, and a reader sees every
statement the writer has committed so far. An ingest is many statements (delete changed files,
COPY each node table, COPY each relationship, delete and rebuild CALLS/INHERITS/IMPORTS), so a
reader in the middle sees graphs that are neither the old version nor the new one. And while
the writer's WAL is not checkpointed, a read-only open fails outright ("Cannot open database in
read-only mode while checkpoint recovery is pending"; graphtune's fallback, a brief read-write
open to replay the WAL, then meets the writer's lock). This script ingests a base version,
starts a second ingest in a subprocess, and meanwhile opens the store read-only again and
again, recording the counts and fingerprint it sees (or the error); then it reports how many
of those states were neither the before nor the after version.

Usage: python bench/reader_beside_writer.py [--packages email logging http xml urllib]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRITER = """
import sys
from graphtune.server.settings import Settings
from graphtune.tools.graph.ingest import IngestParams, run_ingest
run_ingest(IngestParams(path=sys.argv[2]), Settings(home=sys.argv[1]))
"""


def snapshot(graph_dir: Path) -> tuple:
    from graphtune.tools.graph.embedded import EmbeddedGraph

    with EmbeddedGraph(graph_dir, read_only=True) as g:
        count = lambda q: next(g.rows(q))[0]  # noqa: E731
        return (count("MATCH (f:CodeFile) RETURN count(f)"), count("MATCH (m:Method) RETURN count(m)"),
                count("MATCH ()-[r:HAS_METHOD]->() RETURN count(r)"), count("MATCH ()-[r:CALLS]->() RETURN count(r)"),
                g.fingerprint())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", nargs="+", default=["email", "logging", "http", "xml", "urllib"])
    args = parser.parse_args()
    from graphtune.server.settings import Settings
    from graphtune.tools.graph.ingest import IngestParams, run_ingest

    home = Path(tempfile.mkdtemp(prefix="reader-beside-writer-"))
    settings = Settings(home=home)
    settings.ensure_dirs()
    run_ingest(IngestParams(package="json"), settings)
    before = snapshot(settings.graph_dir)
    src = home / "src"
    for package in args.packages:
        spec = importlib.util.find_spec(package)
        shutil.copytree(list(spec.submodule_search_locations)[0], src / f"{package}_copy",
                        ignore=shutil.ignore_patterns("__pycache__"))
    started = time.perf_counter()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(home), str(src)])
    seen: list[tuple] = []
    errors: list[str] = []
    while writer.poll() is None:
        try:
            seen.append(snapshot(settings.graph_dir))
        except Exception as exc:  # noqa: BLE001 (a reader failing mid-write is a finding too)
            errors.append(f"{type(exc).__name__}: {str(exc).split('(', 1)[-1][:160]}")
    write_s = time.perf_counter() - started
    after = snapshot(settings.graph_dir)
    distinct = list(dict.fromkeys(seen))
    torn = [s for s in distinct if s not in (before, after)]
    shutil.rmtree(home, ignore_errors=True)
    print(json.dumps({
        "ingest_seconds": round(write_s, 2), "reads_ok": len(seen), "read_errors": len(errors),
        "read_error_samples": sorted(set(errors))[:3],
        "distinct_states_seen": len(distinct), "states_neither_before_nor_after": len(torn),
        "before (files, methods, HAS_METHOD, CALLS)": before[:4], "after": after[:4],
        "torn_samples": [s[:4] for s in torn[:6]],
    }))


if __name__ == "__main__":
    main()
