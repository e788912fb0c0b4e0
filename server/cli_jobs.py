"""CLI subcommands that start jobs or show artifacts; each calls the MCP tool of the same name."""

from __future__ import annotations

import argparse
from typing import Any


def _start(args: argparse.Namespace, tool: str, **kwargs: Any) -> int:
    from graphtune.server.cli import _emit, call_tool, follow

    view = call_tool(args, tool, **kwargs)
    if not args.wait:
        _emit(view)
        return 0
    final = follow(args, view.job_id)
    _emit({k: final[k] for k in ("job_id", "kind", "status", "result", "error") if final.get(k) is not None})
    return 0 if final["status"] == "succeeded" else 1


def cmd_ingest(args: argparse.Namespace) -> int:
    return _start(args, "ingest_codebase", path=args.path, package=args.package, exclude=args.exclude or None,
                  write_to=args.write_to, codebase=args.codebase, languages=args.languages)


def cmd_extract(args: argparse.Namespace) -> int:
    return _start(args, "extract_training_data", dataset_name=args.dataset_name, node_types=args.node_types,
                  max_records=args.max_records, quality_threshold=args.quality_threshold,
                  augmentation_factor=args.augmentation_factor, objective=args.objective,
                  include_private=args.include_private, source=args.source, eval_fraction=args.eval_fraction,
                  seed=args.seed, output_format=args.output_format, overwrite=args.overwrite,
                  codebases=args.codebases, since=args.since, replay_fraction=args.replay_fraction)


def cmd_datasets(args: argparse.Namespace) -> int:
    from graphtune.server.cli import _emit, call_tool

    if args.name:
        _emit(call_tool(args, "preview_dataset", dataset_name=args.name, limit=args.limit, include_metadata=True))
    else:
        _emit(call_tool(args, "list_datasets"))
    return 0


def _wait_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", "-w", action="store_true", help="follow progress until the job ends")


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("ingest", help="parse a code base (Python, TypeScript/JavaScript, Go, Java, Rust) into the "
                       "graph (job)")
    p.add_argument("path", nargs="?", help="folder or source file")
    p.add_argument("--package", help="installed package import name instead of a path")
    p.add_argument("--exclude", action="append", help="glob of relative paths to skip (repeatable)")
    p.add_argument("--write-to", choices=["embedded", "neo4j"], default="embedded")
    p.add_argument("--codebase", help="code base name (default: package import name, folder name or file stem); "
                   "an ingest only adds, updates and removes nodes of its own code base")
    p.add_argument("--languages", nargs="+", help="only these languages: python typescript javascript go java rust "
                   "(default: all)")
    _wait_flag(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("extract-data", help="build a dataset from the graph (job)")
    p.add_argument("dataset_name")
    p.add_argument("--node-types", nargs="+", choices=["Method", "Class", "Function", "Pattern", "CodeFile"])
    p.add_argument("--max-records", type=int, default=10000)
    p.add_argument("--quality-threshold", type=float, default=0.8)
    p.add_argument("--objective", choices=["skills", "knowledge"], default="skills",
                   help="knowledge: facts of every entity in many phrasings + probes (closed-book evaluation)")
    p.add_argument("--augmentation-factor", type=int,
                   help="skills: tasks per record (default 3); knowledge: phrasings per fact (default 8)")
    p.add_argument("--include-private", action="store_true", help="knowledge: also teach _private names")
    p.add_argument("--source", choices=["embedded", "neo4j"])
    p.add_argument("--eval-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output-format", choices=["chat", "alpaca"], default="chat")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--codebases", nargs="+", help="only these code bases (default: all)")
    p.add_argument("--since", help="knowledge: a delta dataset of what changed since this dataset or graph version")
    p.add_argument("--replay-fraction", type=float, default=0.2,
                   help="delta: share of replayed unchanged facts (default 0.2, provisional)")
    _wait_flag(p)
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("datasets", help="list datasets, or preview one")
    p.add_argument("name", nargs="?")
    p.add_argument("--limit", type=int, default=3)
    p.set_defaults(func=cmd_datasets)

    from graphtune.server.cli_training import add_training_commands

    add_training_commands(sub, _start, _wait_flag)
