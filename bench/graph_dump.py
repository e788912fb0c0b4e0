"""Dump everything an ingest leaves behind, in a canonical text form, to prove a speed change
kept the graph byte-identical: every node with every property, every edge, the graph-version
snapshot (minus its creation time) and the ingest's own report (minus timings).

Usage: python bench/graph_dump.py PATH OUT.txt [--language LANG] [--workers N]
Run it before and after a change on the same corpora and `cmp` the outputs.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import tempfile
from pathlib import Path

TIMING_KEYS = {"seconds", "lines_per_second", "codebases"}  # codebases: holds the ingest time


def dump(path: str, out: Path, language: str | None, workers: int, home: Path | None = None) -> str:
    """Ingest `path` into a fresh data dir (`home`, else a new temporary folder), write the dump to
    `out` and return its short sha256 (tests call it too: tests/unit/graph/test_embedded_pool.py)."""
    from graphtune.server.settings import Settings
    from graphtune.tools.graph import versions
    from graphtune.tools.graph.embedded import EmbeddedGraph
    from graphtune.tools.graph.ingest import IngestParams, run_ingest
    from graphtune.tools.graph.schema import NODE_TABLES, REL_TABLES

    settings = Settings(home=home or Path(tempfile.mkdtemp()))
    settings.ensure_dirs()
    params = IngestParams(path=path, languages=[language] if language else None, workers=workers)
    result = run_ingest(params, settings)
    lines = ["# ingest " + json.dumps({k: v for k, v in result.items() if k not in TIMING_KEYS}, sort_keys=True)]
    with EmbeddedGraph(settings.graph_dir, read_only=True) as g:
        for table, columns in NODE_TABLES.items():
            if table == "CodeBase":
                columns = [c for c in columns if c[0] != "ingested_at"]
            names = ", ".join(f"n.`{name}`" for name, _ in columns)
            rows = sorted(json.dumps(row, ensure_ascii=False) for row in g.rows(f"MATCH (n:{table}) RETURN {names}"))
            lines += [f"# {table} {len(rows)}"] + rows
        for rel, pairs in REL_TABLES.items():
            for src, dst in pairs:
                rows = sorted(json.dumps(row) for row in g.rows(
                    f"MATCH (a:{src})-[:{rel}]->(b:{dst}) RETURN a.uid, b.uid"))
                lines += [f"# {rel} {src}->{dst} {len(rows)}"] + rows
    version = result["graph_version"]
    snapshot_file = versions.codebase_dir(settings, "embedded", result["codebase"]) / f"{version}.json.gz"
    snapshot = json.loads(gzip.decompress(snapshot_file.read_bytes()))
    snapshot.pop("created_at", None)
    lines.append("# snapshot " + json.dumps(snapshot, sort_keys=True, ensure_ascii=False))
    text = "\n".join(lines) + "\n"
    out.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("out", type=Path)
    parser.add_argument("--language", default=None)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    print(args.out, dump(args.path, args.out, args.language, args.workers))


if __name__ == "__main__":
    main()
