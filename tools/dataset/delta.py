"""Delta knowledge datasets: teach what changed since a dataset or graph version, plus replay.

`extract_training_data(objective="knowledge", since=...)` builds the full fact set of the
current graph (knowledge.build), then keeps
- every fact of an entity (or module) added since then: status `new`;
- every fact of a kept entity whose underlying aspect changed (parameters/returns <- signature,
  summary <- docstring, bases, methods, calls, callers, subclasses; module members/imports):
  status `changed`; a profile paragraph for each entity with a new or changed fact;
- replayed unchanged facts, all their phrasings (status `replay`), so that continuing from the
  parent model rehearses what it knew: `replay_fraction` is the share of the delta dataset's
  facts that are replayed (0.8 = four replayed facts per new/changed one); 1.0, the default,
  replays every unchanged fact, and each new/changed row is written `delta_repeats` (8) times so
  the few new facts are not a sliver of each epoch. Chosen by measurement (bench/RESULTS.md,
  "Retraining after a code change", SmolLM2-135M x stdlib `email` on an H100): continuing with a
  sampled replay forgot old facts (replay 0.2: -77 points on untouched entities; 0.8: -19; 0.9 at
  0.1x lr: -4); full replay with new rows x8, 3 epochs at 0.3x lr: new/changed facts 94 %,
  untouched entities -0.7 points.
Facts of removed entities are absent (the graph no longer has them) and counted.
Probes: every new/changed probe, plus as many unchanged ones (at least MIN_UNCHANGED_PROBES),
each marked `status` so evaluation reports new/changed vs unchanged accuracy.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from graphtune.tools.declare import setting
from graphtune.tools.errors import DatasetError
from pydantic import BaseModel, ConfigDict

# Chosen by measurement (bench/RESULTS.md, "Retraining after a code change"; docs/dataset.md, "Delta datasets").
DEFAULT_REPLAY_FRACTION = 1.0  # every unchanged fact
DEFAULT_DELTA_REPEATS = 8  # with a full replay only: a sampled one already sets the new/replayed ratio


class DeltaSettings(BaseModel):
    """How a delta dataset rehearses, declared once: extract_training_data (`since`) and retrain's
    continued training (graphtune.tools.training.retrain.ContinuedTraining) both take these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    replay_fraction: float = setting(DEFAULT_REPLAY_FRACTION, ge=0.0, le=1.0, description=(
        "Delta only: share of unchanged facts replayed, 0-1; default 1 (all)."), cli_help=(
        "Unchanged facts are replayed against forgetting; 1 was chosen by measurement."))
    delta_repeats: int | None = setting(None, offer="engine", ge=1, le=64, description=(
        "Copies of each new/changed row in a delta dataset; default 8 with a full replay, else 1 "
        "(delta.delta_repeats_for)."))

    @property
    def repeats(self) -> int:
        """delta_repeats with its default filled in."""
        return delta_repeats_for(self.replay_fraction, self.delta_repeats)


def delta_repeats_for(replay_fraction: float, repeats: int | None = None) -> int:
    """Copies of each new/changed row: `repeats` when given, else DEFAULT_DELTA_REPEATS with a full
    replay (the measured recipe) and 1 with a sampled one (0.8 = four replayed facts per new one)."""
    if repeats is not None:
        return repeats
    return DEFAULT_DELTA_REPEATS if replay_fraction >= 1 else 1
MIN_UNCHANGED_PROBES = 20
MAX_LISTED = 200
FACT_ASPECT: dict[str, str | None] = {
    "location": None, "parameters": "signature", "returns": "signature", "summary": "docstring", "bases": "bases",
    "subclasses": "subclasses", "methods": "methods", "calls": "calls", "callers": "callers",
    "module_members": "members", "module_imports": "imports"}
FACT_BEARING = {a for a in FACT_ASPECT.values() if a}


@dataclass
class DeltaPlan:
    """Old and new snapshots per code base (graph/versions.py), merged by entity name."""

    old_entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    old_modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    bases: dict[str, str | None] = field(default_factory=dict)  # code base -> old version

    def status(self, key: str, kind: str, fact_type: str) -> str:
        old, new = (self.old_modules, self.new_modules) if kind == "module" else (self.old_entities, self.new_entities)
        if key not in old:
            return "new"
        before, after = old[key]["h"], (new.get(key) or {"h": {}})["h"]
        if fact_type == "profile":
            return "changed" if any(before.get(a) != after.get(a) for a in FACT_BEARING) else "unchanged"
        aspect = FACT_ASPECT.get(fact_type)
        return "changed" if aspect and before.get(aspect) != after.get(aspect) else "unchanged"


def plan_delta(settings: Any, backend: str, records: list[Any], bases: dict[str, str | None]) -> DeltaPlan:
    from graphtune.tools.graph.versions import load_snapshot, snapshot_from_records

    plan = DeltaPlan(bases=bases)
    by_codebase: dict[str, list[Any]] = {}
    for record in records:
        by_codebase.setdefault(record.codebase, []).append(record)
    for codebase, old_version in sorted(bases.items()):
        new = snapshot_from_records(by_codebase.get(codebase, []))
        old = load_snapshot(settings, backend, codebase, old_version) if old_version else {"entities": {}, "modules": {}}
        plan.new_entities.update(new["entities"])
        plan.new_modules.update(new["modules"])
        plan.old_entities.update(old["entities"])
        plan.old_modules.update(old["modules"])
    return plan


def _public(key: str, kind: str) -> bool:
    parts = key.split(".")
    if parts[-1].startswith("_"):
        return False
    return not (kind == "method" and len(parts) > 1 and parts[-2].startswith("_"))


def select_delta(plan: DeltaPlan, train: list[tuple[Any, str, dict[str, Any]]], probes: list[dict[str, Any]], *,
                 replay_fraction: float, include_private: bool, seed: int, since: str,
                 delta_repeats: int = 1) -> tuple[list[tuple[str, str, dict[str, Any]]], list[dict[str, Any]], dict[str, Any]]:
    """(train rows, probes, delta report) of the delta dataset, from the full build's rows.

    `delta_repeats` writes each new/changed row (and touched entities' profiles) that many times: with
    a large replay (every unchanged fact) the few new facts would otherwise be a sliver of each epoch."""
    facts: dict[tuple[str, str], str] = {}
    kinds: dict[str, str] = {}
    for _, _, meta in train:
        kinds[meta["entity"]] = meta["kind"]
        if meta["task"] != "profile":
            key = (meta["entity"], meta["task"])
            if key not in facts:
                facts[key] = plan.status(meta["entity"], meta["kind"], meta["task"])
    delta = {k for k, s in facts.items() if s != "unchanged"}
    if not delta:
        raise DatasetError(f"nothing to teach: no fact changed since `{since}` (graph versions {plan.bases}).",
                           field="since", hint="graph_diff shows what changed; only body edits that change no "
                           "fact (no signature, docstring, call...) leave a delta empty. Omit `since` for a full dataset.")
    unchanged = sorted(k for k, s in facts.items() if s == "unchanged")
    wanted = round(replay_fraction / (1 - replay_fraction) * len(delta)) if replay_fraction < 1 else len(unchanged)
    replayed = set(random.Random(seed).sample(unchanged, min(wanted, len(unchanged))))
    touched = {entity for entity, _ in delta}
    rows = []
    for question, answer, meta in train:
        key = (meta["entity"], meta["task"])
        if meta["task"] == "profile":
            if meta["entity"] not in touched:
                continue
            status = "new" if meta["entity"] not in (plan.old_modules if meta["kind"] == "module"
                                                     else plan.old_entities) else "changed"
        elif key in delta:
            status = facts[key]
        elif key in replayed:
            status = "replay"
        else:
            continue
        rows.extend([(question, answer, {**meta, "delta": status})] * (1 if status == "replay" else delta_repeats))
    chosen_probes = []
    unchanged_probes = []
    for probe in probes:
        key = (probe["entity"], probe["fact_type"])
        status = facts.get(key, plan.status(probe["entity"], probe["kind"], probe["fact_type"]))
        if key in delta:
            chosen_probes.append({**probe, "status": status})
        else:
            unchanged_probes.append({**probe, "status": "unchanged", "replayed": key in replayed})
    n_unchanged = min(len(unchanged_probes), max(len(chosen_probes), MIN_UNCHANGED_PROBES))
    chosen_probes += random.Random(seed + 2).sample(unchanged_probes, n_unchanged)
    report = _report(plan, facts, delta, replayed, unchanged, replay_fraction, include_private)
    report["delta_repeats"] = delta_repeats
    report["probes_by_status"] = dict(Counter(p["status"] for p in chosen_probes))
    return rows, chosen_probes, report


def _report(plan: DeltaPlan, facts: dict[tuple[str, str], str], delta: set[tuple[str, str]],
            replayed: set[tuple[str, str]], unchanged: list[tuple[str, str]], replay_fraction: float,
            include_private: bool) -> dict[str, Any]:
    from graphtune.tools.graph.versions import OWN_ASPECTS, aspect_changes

    keep = (lambda key, kind: True) if include_private else _public  # noqa: E731
    old, new = plan.old_entities, plan.new_entities
    added = sorted(k for k in new.keys() - old.keys() if keep(k, new[k]["k"]))
    removed = sorted(k for k in old.keys() - new.keys() if keep(k, old[k]["k"]))
    changed, affected = [], []
    removed_facts = sum(1 + len(FACT_BEARING & set(old[k]["h"])) for k in removed)
    for key in sorted(old.keys() & new.keys()):
        if not keep(key, new[key]["k"]):
            continue
        aspects = aspect_changes(old[key]["h"], new[key]["h"])
        if aspects:
            (changed if any(a in OWN_ASPECTS for a in aspects) else affected).append(key)
        removed_facts += sum(1 for a in FACT_BEARING if a in old[key]["h"] and a not in new[key]["h"])
    statuses = Counter(facts[k] for k in delta)
    return {
        "graph_versions": plan.bases,
        "entities": {"added": len(added), "changed": len(changed), "affected": len(affected), "removed": len(removed)},
        "facts": {"new": statuses.get("new", 0), "changed": statuses.get("changed", 0), "removed": removed_facts,
                  "replayed": len(replayed), "unchanged": len(unchanged)},
        "replay_fraction": replay_fraction,
        "replay_fraction_note": "the share of this dataset's facts that are unchanged facts replayed against "
                                "forgetting (capped by the unchanged facts there are)",
        "removed_entities": removed[:MAX_LISTED], "added_entities": added[:MAX_LISTED],
        "changed_entities": changed[:MAX_LISTED],
    }
