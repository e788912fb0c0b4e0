"""CPU benchmark: tree-sitter ingest throughput per language against a bare tree-sitter parse.

For each language corpus, in the same run and alternating (machines are noisy):
- bare: a single-process `Parser.parse` of every file (C parse only, no walk),
- extract: graphtune's parser for that language on every file, single process, no store
  (parse + declarations walk + call query + rows), i.e. the per-file cost the ingest adds,
- ingest: a full `run_ingest(languages=[lang])` into a fresh embedded store (parser processes,
  CSV `COPY FROM`, cross-file edge resolution, graph version), as bench/ingest_extract.py
  does for Python against bare `ast`.
Ratios are lines/s over bare lines/s (goal: ingest >= 0.7x). Usage:
  python bench/ingest_languages.py [--corpus typescript=PATH ...] [--rounds 3]
Without --corpus, the committed real packages under tests/fixtures/real are used (small: fixed
costs dominate; pass bigger trees for numbers worth quoting, see bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

REAL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real"
DEFAULT = {"typescript": REAL / "immer", "go": REAL / "uuid", "java": REAL / "rnfs", "rust": REAL / "semver"}


def bare_parse(files: list, grammar_of) -> tuple[float, int]:
    from graphtune.tools.graph.ts_common import parser_for

    started, lines = time.perf_counter(), 0
    for item in files:
        data = Path(item.abs_path).read_bytes()
        parser_for(grammar_of(item)).parse(data)
        lines += data.count(b"\n") + 1
    return time.perf_counter() - started, lines


def graphtune_parse(files: list) -> tuple[float, int]:
    from graphtune.tools.graph.languages import parse_source

    started, lines = time.perf_counter(), 0
    for item in files:
        data = Path(item.abs_path).read_bytes()
        try:
            parse_source(item.rel_path, item.module_name, data, item.language)
        except ValueError:
            continue
        lines += data.count(b"\n") + 1
    return time.perf_counter() - started, lines


def grammar_of(item) -> str:
    if item.language in ("typescript", "javascript"):
        from graphtune.tools.graph.lang_typescript import grammar_for

        return grammar_for(item.rel_path)
    return item.language


def bench_language(language: str, root: Path, rounds: int) -> dict:
    from graphtune.server.settings import Settings
    from graphtune.tools.graph.discovery import discover
    from graphtune.tools.graph.ingest import IngestParams, run_ingest

    files = discover(root, [], [language])
    bare_rates, parse_rates, ingest_rates, ratios = [], [], [], []
    result: dict = {}
    for _ in range(rounds):
        bare_s, bare_lines = bare_parse(files, grammar_of)
        parse_s, parse_lines = graphtune_parse(files)
        settings = Settings(home=Path(tempfile.mkdtemp()))
        settings.ensure_dirs()
        result = run_ingest(IngestParams(path=str(root), languages=[language]), settings)
        bare_rates.append(bare_lines / bare_s)
        parse_rates.append(parse_lines / parse_s)
        ingest_rates.append(result["lines_parsed"] / result["seconds"])
        ratios.append(ingest_rates[-1] / bare_rates[-1])
    bare = statistics.median(bare_rates)
    return {
        "language": language, "root": str(root), "files": len(files), "lines": bare_lines,
        "files_failed": result["files_failed"],
        "nodes": {k: result["graph_counts"][k] for k in ("Class", "Function", "Method", "Parameter")},
        "bare_parse_lines_per_s": round(bare), "graphtune_parse_lines_per_s": round(statistics.median(parse_rates)),
        "ingest_lines_per_s": round(statistics.median(ingest_rates)),
        "parse_ratio_vs_bare": round(statistics.median(parse_rates) / bare, 2),
        "ingest_ratio_vs_bare_median": round(statistics.median(ratios), 2),
        "ingest_ratios_per_round": [round(r, 2) for r in ratios],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", action="append", default=[], help="LANGUAGE=PATH (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    corpora = {k: Path(v) for k, v in (c.split("=", 1) for c in args.corpus)} or DEFAULT
    print(json.dumps([bench_language(lang, root, args.rounds) for lang, root in corpora.items()], indent=1))


if __name__ == "__main__":
    main()
