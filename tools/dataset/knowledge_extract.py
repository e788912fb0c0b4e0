"""`extract_training_data(objective="knowledge")`: graph -> facts -> phrasings -> dataset folder.

Writes `train.jsonl` (every fact of every entity in `augmentation_factor` phrasings, plus
profile paragraphs), `eval.jsonl` (held-out phrasings with reference answers: its loss is
measured on wording the model never saw), `probes.jsonl` (the same held-out questions with
gold facts, scored by `evaluate_model`) and `metadata.json`.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from typing import Any

from graphtune.tools.dataset.atomic import refuse_existing, staged_folder, sweep_temp
from graphtune.tools.dataset.entities import build_entities
from graphtune.tools.dataset.jsonl import format_example, write_jsonl
from graphtune.tools.dataset.knowledge import build
from graphtune.tools.dataset.params import ExtractParams
from graphtune.tools.dataset.styles import HELD_OUT_FAMILIES
from graphtune.tools.errors import DatasetError
from graphtune.tools.graph.sources import open_source
from graphtune.tools.graph.versions import source_versions
from graphtune.tools.job_context import JobContext
from graphtune.tools.version import __version__

KNOWLEDGE_NODE_TYPES = ("Class", "Function", "Method", "CodeFile")
MAX_EVAL_ROWS = 1000


def _chat(prompt: str | list[dict[str, str]], answer: str, meta: dict[str, Any], params: ExtractParams) -> dict[str, Any]:
    return format_example(prompt, answer, meta, output_format=params.output_format,
                          system_prompt=params.system_prompt)


def _is_dataset(settings: Any, name: str) -> bool:
    from graphtune.tools.dataset.names import NAME_PATTERN

    return bool(NAME_PATTERN.fullmatch(name)) and (settings.datasets_dir / name / "metadata.json").is_file()


def _read_records(source_name: str, settings: Any, params: ExtractParams,
                  ctx: JobContext | None) -> tuple[list[Any], Any, dict[str, Any], dict[str, Any]]:
    """The graph's records of the knowledge node types, its fingerprint, graph versions and missing properties."""
    source = open_source(source_name, settings, params.mapping, params.codebases)
    try:
        records = []
        for node_type in KNOWLEDGE_NODE_TYPES:
            records += source.iter_records(node_type)
            if ctx:
                ctx.progress(len(records), None, "records", f"read {node_type} nodes")
        source.enrich(records)
        return records, source.fingerprint(), source_versions(source), dict(source.missing)
    finally:
        source.close()


def _select_delta(settings: Any, source_name: str, records: list[Any], versions: dict[str, Any], built: Any,
                  params: ExtractParams) -> dict[str, Any]:
    """Keep the facts changed since `params.since` (plus replay) in `built`; the delta's report."""
    from graphtune.tools.dataset.delta import delta_repeats_for, plan_delta, select_delta
    from graphtune.tools.dataset.since import delta_bases

    plan = plan_delta(settings, source_name, records,
                      delta_bases(settings, source_name, params.codebases or sorted(versions) or None, params.since))
    built.train, built.probes, delta = select_delta(
        plan, built.train, built.probes, replay_fraction=params.replay_fraction,
        include_private=params.include_private, seed=params.seed, since=params.since,
        delta_repeats=delta_repeats_for(params.replay_fraction, params.delta_repeats))
    return delta


def _example_counts(built: Any, delta: dict[str, Any] | None, params: ExtractParams, train: int,
                    eval_: int) -> dict[str, Any]:
    """The metadata's counts of facts, examples and probes (by type and by family)."""
    return {
        "facts_by_type": dict(built.facts_per_type) if not delta else dict(Counter(
            task for _, task in {(m["entity"], m["task"]) for _, _, m in built.train if m["task"] != "profile"})),
        "train_examples_by_type": dict(Counter(m["task"] for _, _, m in built.train)) if delta
        else dict(built.phrasings_per_type),
        "phrasings_per_fact": params.phrasings, "train_examples": train, "eval_examples": eval_,
        "probes": len(built.probes), "probes_by_type": dict(Counter(p["fact_type"] for p in built.probes)),
        "train_examples_by_family": dict(sorted(Counter(m.get("family", "plain") for _, _, m in built.train).items())),
        "probes_by_family": dict(sorted(Counter(p["family"] for p in built.probes).items())),
    }


def run_knowledge_extract(params: ExtractParams, settings: Any, ctx: JobContext | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    source_name = params.source or settings.graph_backend
    final = settings.datasets_dir / params.dataset_name
    refuse_existing(final, overwrite=params.overwrite, what="dataset", field="dataset_name")
    sweep_temp(settings.datasets_dir)
    records, fingerprint, versions, missing = _read_records(source_name, settings, params, ctx)
    entities, modules = build_entities(records, include_private=params.include_private)
    if not entities:
        raise DatasetError(f"the graph has no {'public ' if not params.include_private else ''}functions, methods "
                           f"or classes (read {len(records)} records).", field="source",
                           hint="Ingest a code base first (ingest_codebase), or set include_private=true.")
    skipped = max(0, len(entities) - params.max_records)
    entities = entities[: params.max_records]
    built = build(entities, modules, phrasings_per_fact=params.phrasings,
                  profiles_per_entity=max(1, params.phrasings // 4), seed=params.seed)
    delta = _select_delta(settings, source_name, records, versions, built, params) if params.since else None
    rng = random.Random(params.seed)
    train_rows = [_chat(q, a, m, params) for q, a, m in built.train]
    rng.shuffle(train_rows)
    eval_probes = list(built.probes)
    random.Random(params.seed + 1).shuffle(eval_probes)
    eval_rows = [_chat(p["question"], p["reference"], {"task": p["fact_type"], "entity": p["entity"],
                                                        "probe_id": p["id"]}, params)
                 for p in eval_probes[:MAX_EVAL_ROWS]]
    metadata = {
        "name": params.dataset_name, "format": params.output_format, "objective": "knowledge",
        "graphtune_version": __version__, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "job_id": ctx.job_id if ctx else None,
        "config": params.model_dump(mode="json", exclude={"mapping"}) | {"source": source_name,
                                                                         "phrasings_per_fact": params.phrasings},
        "source": {"backend": source_name, "graph_fingerprint": fingerprint, "codebases": params.codebases,
                   "graph_versions": versions},
        **({"parent": {"since": params.since, "dataset": params.since if _is_dataset(settings, params.since) else None,
                       "graph_versions": delta["graph_versions"]}, "delta": delta} if delta else {}),
        "records_read": len(records), "missing_properties": missing,
        "entities": len(entities), "entities_by_kind": dict(built.entities_by_kind),
        "entities_over_max_records": skipped,
        **_example_counts(built, delta, params, len(train_rows), len(eval_rows)),
        "split": {"strategy": "held-out phrasings: every entity is trained; eval/probes use question templates "
                              "never used in train.jsonl, half of them inside question style families never "
                              f"trained on ({', '.join(HELD_OUT_FAMILIES)})"},
        "seconds": round(time.perf_counter() - started, 3),
    }
    if ctx:
        ctx.progress(len(records), len(records), "records", "writing")
    with staged_folder(final, overwrite=params.overwrite, what="dataset", field="dataset_name") as tmp:
        write_jsonl(tmp / "train.jsonl", train_rows)
        write_jsonl(tmp / "eval.jsonl", eval_rows)
        write_jsonl(tmp / "probes.jsonl", built.probes)
        (tmp / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        if ctx:
            ctx.check_cancel()
    return _result(params, str(final), metadata, delta)


def _result(params: ExtractParams, path: str, metadata: dict[str, Any], delta: dict[str, Any] | None) -> dict[str, Any]:
    """The job's result: the dataset's name and place and the metadata's counts."""
    return {"dataset_name": params.dataset_name, "path": path, "objective": "knowledge",
            **{k: metadata[k] for k in ("train_examples", "eval_examples", "probes", "entities", "entities_by_kind",
                                        "facts_by_type", "probes_by_type", "probes_by_family", "phrasings_per_fact",
                                        "records_read",
                                        "missing_properties", "seconds")},
            "graph_fingerprint": metadata["source"]["graph_fingerprint"],
            "graph_versions": metadata["source"]["graph_versions"],
            **({"delta": {k: delta[k] for k in ("entities", "facts", "replay_fraction", "delta_repeats",
                                                        "probes_by_status")}}
               if delta else {})}
