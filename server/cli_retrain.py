"""CLI subcommands for the model registry and retraining: diff, promote, compare, delete-model,
retrain and watch (scheduled retraining, for a terminal, cron or CI). Each calls the MCP tool of
the same name; `watch` adds only the schedule and the "did the code change?" check.

`watch` exit codes (with --once): 0 promoted or nothing changed, 3 the policy kept the old
model (the reason is printed), 1 a step of the chain failed. Code the policy already judged
(kept) is not retrained again until it changes (state: <data dir>/.graphtune/watch/<codebase>.json).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from graphtune.server.cli_args import add_request_arguments, request_kwargs
from graphtune.server.cli_common import add_tool_command, call_tool, follow, output, settings_from
from graphtune.tools.requests.retrain import RetrainRequest

EXIT_KEPT = 3
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """'90', '30s', '15m', '1h', '1d' -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30s, 15m, 1h or 1d")
    return float(match[1]) * UNITS[match[2] or "s"]


def disk_version(root: Path, codebase: str, selection: dict[str, Any] | None = None) -> str:
    """The graph version the code on disk would have after an ingest with the same file selection
    (the last ingest's exclude / languages / size limit; content hashes, no parsing)."""
    from graphtune.tools.graph.ingest import IngestParams, selected_files
    from graphtune.tools.graph.python_parser import sha_of
    from graphtune.tools.graph.versions import codebase_version

    _, files, _ = selected_files(IngestParams(path=str(root), **(selection or {})), root)
    return codebase_version({f.rel_path: sha_of(Path(f.abs_path).read_bytes()) for f in files}, codebase)


def trained_version(settings: Any, base: str, codebase: str) -> str | None:
    """The graph version of `codebase` the base model's dataset was built from (None: unknown)."""
    from graphtune.tools.graph.versions import dataset_versions
    from graphtune.tools.training.registry import read_model_metadata

    dataset = (read_model_metadata(settings, base).get("dataset") or {}).get("name")
    path = settings.datasets_dir / str(dataset) / "metadata.json"
    if not dataset or not path.is_file():
        return None
    return dataset_versions(json.loads(path.read_text(encoding="utf-8")), settings, settings.graph_backend).get(codebase)


def retrain_once(args: argparse.Namespace, *, quiet: bool = False) -> int:
    """Queue the retrain chain, follow it to its end, print the decision; returns the exit code."""
    chain = call_tool(args, "retrain", **request_kwargs(args, RetrainRequest))
    if not getattr(args, "wait", True):
        output(args, chain)
        return 0
    for step in chain.jobs:
        final = follow(args, step["job_id"], quiet=quiet)
        if final["status"] != "succeeded":
            error = final.get("error") or {}
            if "nothing to teach" in str(error.get("message")):
                output(args, {"codebase": args.codebase, "outcome": "unchanged", "detail": error.get("message")})
                return 0
            output(args, {"codebase": args.codebase, "outcome": final["status"], "failed_step": step, "error": error})
            return 1
    decision = final["result"]
    output(args, {"codebase": args.codebase, "outcome": "promoted" if decision["promoted"] else "kept", **decision})
    return 0 if decision["promoted"] else EXIT_KEPT


def cmd_retrain(args: argparse.Namespace) -> int:
    return retrain_once(args)


def _watch_round(args: argparse.Namespace, root: Path) -> int | None:
    """One check: retrain when the code differs from what `base` was trained on; None: unchanged."""
    from graphtune.tools.errors import ConfigError
    from graphtune.tools.graph.versions import last_ingest
    from graphtune.tools.training.registry import model_dir

    settings = settings_from(args)
    recorded, selection = last_ingest(settings, settings.graph_backend, args.codebase)
    if recorded != str(root):
        raise ConfigError(f"code base `{args.codebase}` was last ingested from {recorded or 'nowhere'}, not {root}.",
                          field="codebase", hint=f"Ingest it once: graphtune ingest {root} --codebase "
                          f"{args.codebase} (then extract, train and promote a first model).")
    base = model_dir(settings, RetrainRequest.parse(request_kwargs(args, RetrainRequest)).base, "base").name
    version = disk_version(root, args.codebase, selection)
    state = settings.db_path.parent / "watch" / f"{args.codebase}.json"
    tried = json.loads(state.read_text()) if state.is_file() else {}
    if version in (trained_version(settings, base, args.codebase), tried.get("version")):
        output(args, {"codebase": args.codebase, "outcome": "unchanged", "model": base,
               "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               **({"last_attempt": tried} if version == tried.get("version") else {})})
        return None
    code = retrain_once(args, quiet=args.quiet)
    if code in (0, EXIT_KEPT):  # the same code is not retrained again; a failed chain is retried next round
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"version": version, "model": base, "exit_code": code,
                                     "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    return code


def cmd_watch(args: argparse.Namespace) -> int:
    from graphtune.tools.graph.discovery import default_codebase, resolve_root

    root = resolve_root(args.path, None)
    args.codebase = args.codebase or default_codebase(root, None)
    while True:
        code = _watch_round(args, root)
        if args.once:
            return code or 0
        print(f"next check in {args.every:.0f}s", file=sys.stderr, flush=True)
        time.sleep(args.every)


def _policy_flags(p: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """The retrain tool's parameters as flags (RetrainRequest), and `--epochs`, the old name of `--num-epochs`."""
    add_request_arguments(p, RetrainRequest, skip=skip)
    p.add_argument("--epochs", dest="num_epochs", help=argparse.SUPPRESS)  # scripts written before the rename


def add_retrain_commands(sub: Any, wait_flag: Any) -> None:
    add_tool_command(sub, "diff", "graph_diff", "what changed in a code base since a graph version or dataset",
                     ("codebase",))
    add_tool_command(sub, "promote", "promote_model", "point an alias (default: current) at a model", ("model_name",))
    add_tool_command(sub, "delete-model", "delete_model",
                     "delete a fine-tuned model (refuses an aliased one without --force)", ("model_name",))

    p = sub.add_parser("retrain", help="re-ingest, delta-train, compare, promote if the policy holds (job chain)")
    _policy_flags(p)
    wait_flag(p)
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("watch", help="retrain on a schedule when the code changed (cron/CI: --once)")
    p.add_argument("path", help="the code base's folder (ingested before, with a model trained on it)")
    p.add_argument("--codebase", help="code base name (default: the folder's name)")
    p.add_argument("--every", type=duration, default=3600.0, help="check interval: 30s, 15m, 1h (default), 1d")
    p.add_argument("--once", action="store_true", help="check once and exit (cron, CI): 0 promoted or unchanged, "
                   "3 kept by the policy, 1 failed")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    _policy_flags(p, skip=("codebase",))
    p.set_defaults(func=cmd_watch)
