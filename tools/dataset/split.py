"""Train/eval split by file: no file contributes to both sides, so near-copies cannot leak."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any, TypeVar

T = TypeVar("T")


def _group(record: Any) -> str:
    return record.file_path or f"{record.node_type}:{record.key}"


def split_by_file(chosen: list[tuple[float, T]], eval_fraction: float, seed: int) -> tuple[list[tuple[float, T]], list[tuple[float, T]], dict[str, Any]]:
    groups: dict[str, list[tuple[float, T]]] = defaultdict(list)
    for item in chosen:
        groups[_group(item[1])].append(item)
    order = sorted(groups, key=lambda g: hashlib.blake2b(f"{seed}:{g}".encode(), digest_size=8).digest())
    target = round(len(chosen) * eval_fraction)
    eval_groups: set[str] = set()
    taken = 0
    if eval_fraction > 0 and len(groups) >= 2:
        for group in order:
            if taken >= max(target, 1):
                break
            if taken + len(groups[group]) > max(target, 1) * 2 and taken > 0:
                continue  # a huge file would overshoot the eval share; try smaller ones
            eval_groups.add(group)
            taken += len(groups[group])
        if len(eval_groups) == len(groups):  # never leave training empty
            eval_groups.discard(order[-1])
    train = [item for item in chosen if _group(item[1]) not in eval_groups]
    evals = [item for item in chosen if _group(item[1]) in eval_groups]
    stats = {"train_records": len(train), "eval_records": len(evals), "train_files": len(groups) - len(eval_groups),
             "eval_files": len(eval_groups)}
    return train, evals, stats
