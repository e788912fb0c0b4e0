"""Build a dataset from a graph (the `extract` job kind).

Order matters (the original implementation got it wrong): score every record, filter by
quality, rank best-first (ties broken by a seeded hash), deduplicate while filling the
`max_records` cap, split by file, then augment each record into up to N distinct tasks.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from typing import Any

from graphtune.tools.dataset.atomic import refuse_existing, staged_folder, sweep_temp
from graphtune.tools.dataset.dedup import Deduplicator
from graphtune.tools.dataset.jsonl import format_example, write_jsonl
from graphtune.tools.dataset.params import ExtractParams
from graphtune.tools.dataset.quality import score
from graphtune.tools.dataset.split import split_by_file
from graphtune.tools.dataset.tasks import tasks_for
from graphtune.tools.errors import DatasetError
from graphtune.tools.graph.records import CodeRecord
from graphtune.tools.graph.sources import open_source
from graphtune.tools.graph.versions import source_versions
from graphtune.tools.job_context import JobContext
from graphtune.tools.version import __version__

PROGRESS_EVERY = 2000


def _rank_key(seed: int, key: str) -> str:
    return hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).hexdigest()


def _dedup_text(r: CodeRecord) -> str:
    return r.source or f"{r.node_type}:{r.key}:{r.docstring or r.description}"


def collect(params: ExtractParams, source: Any, ctx: JobContext | None) -> tuple[list[tuple[float, CodeRecord]], dict[str, Any]]:
    """Stream all records, keep those over the threshold; returns them with read statistics."""
    totals = {t: source.count(t) for t in params.node_types}
    grand_total = sum(totals.values())
    histogram = [0] * 10
    read, passed = Counter(), Counter()
    kept: list[tuple[float, str, CodeRecord]] = []
    n = 0
    for node_type in params.node_types:
        for record in source.iter_records(node_type):
            value = score(record)
            histogram[min(int(value * 10), 9)] += 1
            read[node_type] += 1
            if value >= params.quality_threshold:
                passed[node_type] += 1
                kept.append((value, _rank_key(params.seed, record.key), record))
            n += 1
            if ctx and n % PROGRESS_EVERY == 0:
                ctx.progress(n, grand_total, "records", f"read {n}, passed {sum(passed.values())}")
    kept.sort(key=lambda item: (-item[0], item[1]))
    stats = {"read": dict(read), "passed_quality": dict(passed), "records_read": n,
             "score_histogram": {f"{i / 10:.1f}-{(i + 1) / 10:.1f}": c for i, c in enumerate(histogram)},
             "missing_properties": dict(source.missing)}
    return [(v, r) for v, _, r in kept], stats


def select(ranked: list[tuple[float, CodeRecord]], params: ExtractParams) -> tuple[list[tuple[float, CodeRecord]], dict[str, int]]:
    dedup = Deduplicator(threshold=params.near_duplicate_threshold)
    chosen = []
    for value, record in ranked:
        if len(chosen) >= params.max_records:
            break
        if not dedup.is_duplicate(_dedup_text(record)):
            chosen.append((value, record))
    return chosen, {"exact_duplicates": dedup.exact, "near_duplicates": dedup.near}


def to_rows(chosen: list[tuple[float, CodeRecord]], params: ExtractParams) -> tuple[list[dict[str, Any]], Counter[str]]:
    rows, per_task, seen = [], Counter(), set()
    for value, record in chosen:
        for task, prompt, answer in tasks_for(record)[: params.phrasings]:
            digest = hashlib.blake2b(f"{prompt}\0{answer}".encode(), digest_size=16).digest()
            if digest in seen or not answer.strip():
                continue
            seen.add(digest)
            per_task[f"{record.node_type}.{task}"] += 1
            meta = {"task": task, "node_type": record.node_type, "key": record.key, "file_path": record.file_path,
                    "quality": value}
            rows.append(format_example(prompt, answer, meta, output_format=params.output_format,
                                       system_prompt=params.system_prompt))
    return rows, per_task


def run_extract(params: ExtractParams, settings: Any, ctx: JobContext | None = None) -> dict[str, Any]:
    if params.objective == "knowledge":
        from graphtune.tools.dataset.knowledge_extract import run_knowledge_extract

        return run_knowledge_extract(params, settings, ctx)
    started = time.perf_counter()
    source_name = params.source or settings.graph_backend
    final = settings.datasets_dir / params.dataset_name
    refuse_existing(final, overwrite=params.overwrite, what="dataset", field="dataset_name")
    sweep_temp(settings.datasets_dir)
    source = open_source(source_name, settings, params.mapping, params.codebases)
    try:
        ranked, stats = collect(params, source, ctx)
        read_s = time.perf_counter() - started
        if not ranked:
            raise DatasetError(_empty_message(stats, params), field="quality_threshold",
                               hint="Lower `quality_threshold`, add node types, or ingest better-documented code; "
                               "`missing_properties` lists what the graph lacked.")
        chosen, dedup_stats = select(ranked, params)
        source.enrich([record for _, record in chosen])
        fingerprint = source.fingerprint()
        versions = source_versions(source)
    finally:
        source.close()
    train_recs, eval_recs, split_stats = split_by_file(chosen, params.eval_fraction, params.seed)
    train_rows, train_tasks = to_rows(train_recs, params)
    eval_rows, eval_tasks = to_rows(eval_recs, params)
    if ctx:
        ctx.progress(stats["records_read"], stats["records_read"], "records", "writing")
    metadata = {
        "name": params.dataset_name, "format": params.output_format, "graphtune_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "job_id": ctx.job_id if ctx else None,
        "config": params.model_dump(mode="json", exclude={"mapping"}) | {"source": source_name},
        "source": {"backend": source_name, "graph_fingerprint": fingerprint, "codebases": params.codebases,
                   "graph_versions": versions},
        **stats, **dedup_stats,
        "records_selected": len(chosen), "records_by_node_type": dict(Counter(r.node_type for _, r in chosen)),
        "split": split_stats, "train_examples": len(train_rows), "eval_examples": len(eval_rows),
        "examples_by_task": dict(train_tasks + eval_tasks),
        "seconds": round(time.perf_counter() - started, 3),
        "records_per_second_read": round(stats["records_read"] / read_s) if read_s else None,
    }
    with staged_folder(final, overwrite=params.overwrite, what="dataset", field="dataset_name") as tmp:
        write_jsonl(tmp / "train.jsonl", train_rows)
        write_jsonl(tmp / "eval.jsonl", eval_rows)
        (tmp / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        if ctx:
            ctx.check_cancel()  # last safe point: after this the dataset exists
    return {"dataset_name": params.dataset_name, "path": str(final), **{k: metadata[k] for k in (
        "train_examples", "eval_examples", "records_read", "records_selected", "records_by_node_type",
        "examples_by_task", "score_histogram", "missing_properties", "exact_duplicates", "near_duplicates",
        "seconds", "records_per_second_read")}, "split": split_stats, "graph_fingerprint": fingerprint}


def _empty_message(stats: dict[str, Any], params: ExtractParams) -> str:
    if not stats["records_read"]:
        return f"the graph has no {'/'.join(params.node_types)} nodes."
    return (f"no record reached quality_threshold={params.quality_threshold} "
            f"(read {stats['records_read']}; score histogram {stats['score_histogram']}).")


def run_extract_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Job handler registered as kind `extract`."""
    return run_extract(ExtractParams(**params), ctx.settings, ctx)
