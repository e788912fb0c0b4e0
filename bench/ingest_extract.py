"""CPU benchmark: ingest and extraction throughput on the whole standard library.

Ingest: graphtune's ingest (parallel parse + bulk COPY into LadybugDB) against a bare
single-process `ast.parse` + `ast.walk` over the same files, in the same run -> ratio.
Extraction: records/s streamed, scored and filtered from the embedded store (graph of
>100k nodes), and peak RSS. Usage: python bench/ingest_extract.py [--root PATH]
"""

from __future__ import annotations

import argparse
import ast
import json
import resource
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path


def bare_ast(files: list[str]) -> tuple[float, int]:
    started, lines = time.perf_counter(), 0
    for path in files:
        data = Path(path).read_bytes()
        try:
            tree = ast.parse(data)
        except (SyntaxError, ValueError):
            continue
        for _ in ast.walk(tree):
            pass
        lines += data.count(b"\n") + 1
    return time.perf_counter() - started, lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=sysconfig.get_paths()["stdlib"])
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/ingest rounds (machines are noisy)")
    args = parser.parse_args()
    from graphtune.server.settings import Settings
    from graphtune.tools.dataset.extract import collect
    from graphtune.tools.dataset.params import ExtractParams
    from graphtune.tools.graph.discovery import discover
    from graphtune.tools.graph.ingest import IngestParams, run_ingest
    from graphtune.tools.graph.sources import EmbeddedSource

    files = [f.abs_path for f in discover(Path(args.root), [])]
    ratios, bare_rates, ingest_rates = [], [], []
    for _ in range(args.rounds):  # each round: bare ast, then a full ingest into a fresh store
        settings = Settings(home=Path(tempfile.mkdtemp()))
        settings.ensure_dirs()
        bare_s, bare_lines = bare_ast(files)
        result = run_ingest(IngestParams(path=args.root), settings)
        bare_rates.append(bare_lines / bare_s)
        ingest_rates.append(result["lines_parsed"] / result["seconds"])
        ratios.append(ingest_rates[-1] / bare_rates[-1])
    ingest_lines_s, bare_lines_s = statistics.median(ingest_rates), statistics.median(bare_rates)
    source = EmbeddedSource(settings)
    nodes = sum(result["graph_counts"][k] for k in ("CodeFile", "Class", "Function", "Method", "Parameter", "Pattern"))
    started = time.perf_counter()
    _, stats = collect(ExtractParams(dataset_name="bench"), source, None)
    extract_s = time.perf_counter() - started
    source.close()
    row = {
        "files": len(files), "lines": bare_lines, "graph_nodes": nodes,
        "bare_ast_lines_per_s": round(bare_lines_s), "ingest_lines_per_s": round(ingest_lines_s),
        "ingest_ratio_vs_bare_ast_median": round(statistics.median(ratios), 2),
        "ingest_ratios_per_round": [round(r, 2) for r in ratios], "ingest_seconds_last": result["seconds"],
        "files_failed": result["files_failed"], "extract_records": stats["records_read"],
        "extract_records_per_s": round(stats["records_read"] / extract_s), "extract_seconds": round(extract_s, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
