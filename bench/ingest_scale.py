"""CPU benchmark for issue 21 item 4 ("ingest at scale"): ingests through the job path.

Each ingest is a real `ingest` job: submitted to the job store, run by a worker process
(`python -m graphtune.server.worker`, as the server starts it), timed by the job's own `seconds`
(job time, what the issue quotes) and by submit-to-finish wall; the peak RSS is the largest sum
of RSS over the worker and its parser processes, sampled every 20 ms.

  python bench/ingest_scale.py python PATH [--rounds 3]
      per round: a bare single-process `ast.parse` of the same files, then a first ingest into
      a fresh store, then an unchanged re-ingest of the same tree. Ratios: ingest lines/s over
      bare lines/s (goal >= 0.8) and re-ingest seconds over first-ingest seconds (goal <= 0.05),
      each within the round, medians over rounds.
  python bench/ingest_scale.py mixed PATH [--rounds 1]
      one ingest of a mixed-language tree into a fresh store (goal: 1M lines <= 30 s, <= 2 GiB).

Machines are shared and noisy: compare the ratios measured in the same run, not absolute figures.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path


def bare_ast(files: list[str], walk: bool = False) -> tuple[float, int]:
    """Single-process `ast.parse` of every file (read included), lines as the ingest counts them;
    `walk`: plus an `ast.walk` of each tree (bench/ingest_extract.py's baseline, the one the
    issue's 0.54x was measured against)."""
    started, lines = time.perf_counter(), 0
    for path in files:
        data = Path(path).read_bytes()
        try:
            tree = ast.parse(data)
        except (SyntaxError, ValueError):
            continue
        if walk:
            for _ in ast.walk(tree):
                pass
        lines += data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    return time.perf_counter() - started, lines


def _tree_rss(pid: int) -> int:
    """RSS bytes of a process and its descendants (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as handle:
                    todo += [int(c) for c in handle.read().split()]
        except (OSError, ValueError):
            continue
    return total


def run_job(settings, params: dict) -> dict:
    """Submit one ingest job, wait for it; its result plus wall seconds and peak tree RSS."""
    from graphtune.server.job_runner import JobRunner
    from graphtune.server.job_store import JobStore

    store = JobStore(settings.db_path)
    runner = JobRunner(store, settings)
    started = time.perf_counter()
    job = runner.submit("ingest", params)
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for proc in list(runner._children.values()):
                peak[0] = max(peak[0], _tree_rss(proc.pid))
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    while not (record := store.get(job.id)).status.is_final:
        time.sleep(0.02)
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    runner.reap()
    if record.result is None:
        raise SystemExit(f"ingest job {record.status.value}: {record.error}")
    return {**record.result, "wall_s": round(wall, 3), "peak_rss_mib": round(peak[0] / 2**20)}


def fresh_settings():
    from graphtune.server.settings import Settings

    settings = Settings(home=Path(tempfile.mkdtemp(prefix="gt-scale-")))
    settings.ensure_dirs()
    return settings


def bench_python(root: str, rounds: int, workers: int) -> dict:
    from graphtune.tools.graph.discovery import discover

    files = [f.abs_path for f in discover(Path(root), [], ["python"])]
    params = {"path": root, "languages": ["python"], **({"workers": workers} if workers else {})}
    rows = []
    for _ in range(rounds):
        bare_s, bare_lines = bare_ast(files)
        settings = fresh_settings()
        first = run_job(settings, params)
        again = run_job(settings, params)
        walk_s, _ = bare_ast(files, walk=True)
        rows.append({"bare_s": bare_s, "walk_s": walk_s, "bare_lines": bare_lines, "first": first, "again": again})
    ratio = [r["first"]["lines_parsed"] / r["first"]["seconds"] / (r["bare_lines"] / r["bare_s"]) for r in rows]
    walk_ratio = [r["first"]["lines_parsed"] / r["first"]["seconds"] / (r["bare_lines"] / r["walk_s"]) for r in rows]
    reingest = [r["again"]["seconds"] / r["first"]["seconds"] for r in rows]
    last = rows[-1]
    return {
        "root": root, "files": len(files), "lines": last["bare_lines"], "files_failed": last["first"]["files_failed"],
        "bare_ast_parse_s": [round(r["bare_s"], 3) for r in rows],
        "bare_ast_parse_walk_s": [round(r["walk_s"], 3) for r in rows],
        "ingest_job_s": [r["first"]["seconds"] for r in rows], "ingest_wall_s": [r["first"]["wall_s"] for r in rows],
        "reingest_job_s": [r["again"]["seconds"] for r in rows],
        "reingest_files_parsed": last["again"]["files_parsed"],
        "ingest_vs_bare_ratio_median": round(statistics.median(ratio), 3),
        "ingest_vs_bare_ratios": [round(x, 3) for x in ratio],
        "ingest_vs_bare_parse_walk_median": round(statistics.median(walk_ratio), 3),
        "ingest_vs_bare_parse_walk_ratios": [round(x, 3) for x in walk_ratio],
        "reingest_vs_first_median": round(statistics.median(reingest), 4),
        "reingest_vs_first": [round(x, 4) for x in reingest],
        "peak_rss_mib": max(r["first"]["peak_rss_mib"] for r in rows),
    }


def bench_mixed(root: str, rounds: int, workers: int) -> dict:
    params = {"path": root, **({"workers": workers} if workers else {})}
    results = [run_job(fresh_settings(), params) for _ in range(rounds)]
    last = results[-1]
    return {
        "root": root, "files": last["files_found"], "languages": last["languages"],
        "lines_parsed": last["lines_parsed"], "files_failed": last["files_failed"],
        "names_left_out_files": len(last["names_left_out"]),
        "job_s": [r["seconds"] for r in results], "wall_s": [r["wall_s"] for r in results],
        "peak_rss_mib": [r["peak_rss_mib"] for r in results],
        "graph_counts": {k: last["graph_counts"][k] for k in ("CodeFile", "Class", "Function", "Method", "Parameter")},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("python", "mixed"))
    parser.add_argument("root")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="parser processes (0: the job's default)")
    args = parser.parse_args()
    run = bench_python if args.what == "python" else bench_mixed
    print(json.dumps(run(str(Path(args.root).resolve()), args.rounds, args.workers), indent=1))


if __name__ == "__main__":
    main()
