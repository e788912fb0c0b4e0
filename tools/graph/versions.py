"""Graph versions per code base, and what changed between two of them (the graph diff).

A code base's graph version is the fingerprint of its files' content hashes (the same number
a dataset of that one code base records as `graph_fingerprint`): equal code, equal version.
Every ingest records the version it left behind, with a snapshot of one small hash per
aspect of every entity, so any two recorded versions can be compared later, even after the
graph itself has moved on.

Where: `<home>/.graphtune/graph_versions/<backend>/<codebase>/` holds `index.json` (the
versions in ingest order) and one `<version>.json.gz` snapshot each. Files, not graph nodes:
the same code serves the embedded store and a user's Neo4j (whose graph we should not fill
with bookkeeping), the ingest worker is the only writer (temp file + rename, under a lock
file), and a diff is an in-memory comparison of two key -> hashes maps anyway. A snapshot
costs about 35 bytes per entity (gzip): 23 KB for `email`, 1.9 MB for `transformers` (53,595
entities, whose snapshot pass adds 3.3 s to a 47 s ingest); an unchanged re-ingest adds nothing.

Granularity: entities are functions, methods and classes (modules are counted separately).
Aspects compared per entity: `signature` (parameters, return type, async; a class: its
constructor and decorators), `docstring`, `body` (source; a class's own lines without its
methods), `bases`, `methods`, `calls` (resolved callees) - changes of the entity itself - and
the derived `callers` and `subclasses`, which change when *other* code changes. An entity
whose own aspects changed is `changed`; one whose only change is derived is `affected`.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from graphtune.tools.errors import ConfigError, VersionNotFound, shown
from graphtune.tools.graph.entity_hashes import OwnHashes, own_hashes, stale
from graphtune.tools.graph.entity_hashes import short_hash as _h
from graphtune.tools.graph.records import files_by_module
from graphtune.tools.graph.schema import CODEBASE_NAME, graph_fingerprint, uid

SNAPSHOT_FORMAT = 1
OWN_ASPECTS = ("signature", "docstring", "body", "bases", "methods", "calls")
DERIVED_ASPECTS = ("callers", "subclasses")
MODULE_ASPECTS = ("members", "imports")
ENTITY_KINDS = ("class", "function", "method")
CHANGE_ORDER = {"added": 0, "removed": 1, "changed": 2, "affected": 3}
FIRST_PAGE = 20


def versions_root(settings: Any, backend: str) -> Path:
    return settings.home / ".graphtune" / "graph_versions" / backend


def codebase_dir(settings: Any, backend: str, codebase: str) -> Path:
    import re

    if not re.fullmatch(CODEBASE_NAME, codebase or ""):
        raise ConfigError(f"`codebase`={shown(codebase)} is not a valid code base name.", field="codebase",
                          hint="validate_environment lists the code bases of the graph.")
    return versions_root(settings, backend) / codebase


def codebase_version(file_shas: dict[str, str], codebase: str) -> str:
    """The version of one code base from its files (path -> sha), as `EmbeddedGraph.fingerprint([cb])`."""
    return graph_fingerprint({uid(codebase, path): sha for path, sha in file_shas.items()})


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def snapshot_from_records(records: Iterable[Any], own: OwnHashes | None = None) -> dict[str, Any]:
    """{entities: {qualified name: {k: kind, f: file, h: {aspect: hash}}}, modules: {...}}.

    `records` are CodeRecords of one code base (Class, Function, Method, CodeFile) with calls
    and callers filled in (GraphSource.enrich). `own`: the own-aspect hashes made by the parser
    processes (entity_hashes; the records may then lack their text), else hashed from the
    records. Empty aspects are left out, so "a function lost its return type" reads as a
    changed signature, "gained its first caller" as a new `callers` aspect."""
    by_type: dict[str, list[Any]] = defaultdict(list)
    for record in records:
        by_type[record.node_type].append(record)
    callables = by_type["Function"] + by_type["Method"]
    if own is None:
        own = own_hashes(callables, by_type["Class"])
    entities: dict[str, dict[str, Any]] = {}
    for r in callables:
        _, signature, docstring, body = own[(r.node_type, r.key)]
        aspects = {"signature": signature, "docstring": docstring, "body": body,
                   "calls": _h(sorted(set(r.calls))) if r.calls else None,
                   "callers": _h(sorted(set(r.called_by))) if r.called_by else None}
        kind = "method" if r.node_type == "Method" and r.class_name else "function"
        entities[r.key] = {"k": kind, "f": r.file_path, "h": {k: v for k, v in aspects.items() if v}}
    subclasses: dict[str, set[str]] = defaultdict(set)
    by_short: dict[str, list[str]] = defaultdict(list)
    for r in by_type["Class"]:
        by_short[r.name].append(r.key)
    for r in by_type["Class"]:
        for base in r.base_classes:
            for parent in by_short.get(_last(base), ()):
                subclasses[parent].add(r.key)
    for r in by_type["Class"]:
        _, signature, docstring, body, bases = own[("Class", r.key)]
        aspects = {"signature": signature, "docstring": docstring, "body": body, "bases": bases,
                   "methods": _h(sorted(set(r.members))) if r.members else None,
                   "subclasses": _h(sorted(subclasses[r.key])) if subclasses.get(r.key) else None}
        entities[r.key] = {"k": "class", "f": r.file_path, "h": {k: v for k, v in aspects.items() if v}}
    return {"format": SNAPSHOT_FORMAT, "entities": entities, "modules": _modules(by_type["CodeFile"])}


def _modules(files: list[Any]) -> dict[str, dict[str, Any]]:
    """Module aspects by module name. A module may span files (a Go package): its members and
    imports are the union over its files and `f` its first file by path, so the entry does not
    depend on the order the store returns the files in (it did: a re-ingest of an unchanged Go
    code base reported changed packages). Snapshots recorded before this held one file's aspects
    for such a module, so the first diff against one may report it changed, once (single-file
    modules hash as before)."""
    modules = {}
    for name, parts in files_by_module(files).items():
        members = {m for r in parts for m in r.members}
        imports = {i for r in parts for i in r.imports}
        aspects = {"members": _h(sorted(members)) if members else None,
                   "imports": _h(sorted(imports)) if imports else None}
        modules[name] = {"k": "module", "f": parts[0].file_path,
                         "h": {k: v for k, v in aspects.items() if v}}
    return modules


def read_snapshot_from_graph(settings: Any, backend: str, codebase: str, graph: Any = None,
                             own: OwnHashes | None = None, after_reads: Callable[[], None] | None = None
                             ) -> dict[str, Any]:
    """Read one code base's entities from the graph (read-only) and hash them. `graph`: the
    embedded store the ingest still holds open (saves reopening it), else the store is opened.
    `own` (with `graph`): the ingest's own-aspect hashes of the files it parsed; the text
    properties are then read back only for the entities they cannot answer for (entity_hashes.stale).
    `after_reads`: called once the store is read no more, before the hashing (the ingest starts
    its store's checkpoint there, to run beside the pure-Python rest of the version)."""
    from graphtune.tools.graph.sources import EmbeddedSource, open_source

    source = EmbeddedSource(settings, [codebase], graph=graph) if graph is not None else \
        open_source(backend, settings, None, [codebase])
    own = own if graph is not None else None
    try:
        records: list[Any] = []
        for node_type in ("Class", "Function", "Method", "CodeFile"):
            records += source.iter_records(node_type) if own is None else source.iter_records(node_type, text=False)
        if own is not None:
            own = _complete(source, own, records)
        source.enrich(records)
    finally:
        source.close()
    if after_reads is not None:
        after_reads()
    return snapshot_from_records(records, own)


def _complete(source: Any, own: OwnHashes, records: list[Any]) -> OwnHashes:
    """`own`, with the stale hashes redone from those entities' full records."""
    callables = [r for r in records if r.node_type in ("Function", "Method")]
    redo, read = stale(own, callables, [r for r in records if r.node_type == "Class"])
    if not redo:
        return own
    full: dict[str, list[Any]] = {}
    for label in ("Function", "Method", "Class"):
        names = sorted(key for kind, key in read if kind == label)
        full[label] = list(source.iter_records(label, names=names)) if names else []
    fresh = own_hashes(full["Function"] + full["Method"], full["Class"])
    return {**own, **{key: fresh[key] for key in redo}}


# --- the version index -------------------------------------------------------------------

def read_index(settings: Any, backend: str, codebase: str) -> list[dict[str, Any]]:
    path = codebase_dir(settings, backend, codebase) / "index.json"
    if not path.is_file():
        return []
    return json.loads(path.read_text(encoding="utf-8"))


def current_version(settings: Any, backend: str, codebase: str) -> str | None:
    index = read_index(settings, backend, codebase)
    return index[-1]["version"] if index else None


def last_ingest(settings: Any, backend: str, codebase: str) -> tuple[str | None, dict[str, Any]]:
    """(root, file selection) of the code base's last recorded ingest: what `retrain` and `watch` repeat,
    so that files the first ingest left out (`exclude`, `languages`) are not taken for new code.
    The selection is {} for versions recorded before it was kept."""
    entries = [v for v in read_index(settings, backend, codebase) if v.get("root")]
    return (entries[-1]["root"], dict(entries[-1].get("selection") or {})) if entries else (None, {})


def repeatable_codebases(settings: Any, backend: str) -> list[str]:
    """Code bases whose last ingest recorded its folder, i.e. the names `retrain` can repeat: what an
    error about an unknown code base lists, so a typo is fixed from the reply."""
    root = versions_root(settings, backend)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return [name for name in names if last_ingest(settings, backend, name)[0]]


def load_snapshot(settings: Any, backend: str, codebase: str, version: str) -> dict[str, Any]:
    import re

    path = codebase_dir(settings, backend, codebase) / f"{version}.json.gz"
    if not isinstance(version, str) or not re.fullmatch(r"[0-9a-f]{16}", version) or not path.is_file():
        known = [v["version"] for v in read_index(settings, backend, codebase)]
        raise VersionNotFound(f"code base `{codebase}` has no recorded graph version `{version}`.", field="since",
                              hint=f"Recorded versions, oldest first: {known[-10:] or 'none (ingest it first)'}.")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:  # Windows: a single ingest worker per code base in practice
            pass
        yield


def record_version(settings: Any, backend: str, codebase: str, version: str, snapshot_fn: Any,
                   job_id: str | None = None, root: str | None = None,
                   selection: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record `version` as this code base's current one (snapshot made by `snapshot_fn()` unless
    it is already the latest); return the diff from the previous version: counts + first page.
    `root` and `selection` (the ingest's exclude / languages / size limit) are what the next
    `retrain` ingests again; an unchanged version still takes a new root or selection."""
    folder = codebase_dir(settings, backend, codebase)
    where = {"root": root, "selection": selection} if root is not None else {}
    with _locked(folder):
        index = read_index(settings, backend, codebase)
        latest = index[-1]["version"] if index else None
        path = folder / f"{version}.json.gz"
        if latest == version and path.is_file():
            previous, diff = version, empty_diff()
            if where and any(index[-1].get(k) != v for k, v in where.items()):  # moved, or another selection
                index[-1].update(where)
                _write_atomic(folder / "index.json", json.dumps(index, indent=1).encode())
        else:
            snap = snapshot_fn()
            old = load_snapshot(settings, backend, codebase, latest) if latest and (
                folder / f"{latest}.json.gz").is_file() else {"entities": {}, "modules": {}}
            diff = diff_snapshots(old, snap)
            snap = {**snap, "codebase": codebase, "version": version,
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            _write_atomic(path, gzip.compress(json.dumps(snap, separators=(",", ":")).encode(), compresslevel=6, mtime=0))
            previous = latest
            index.append({"version": version, "previous": latest, "created_at": snap["created_at"],
                          "job_id": job_id, "entities": len(snap["entities"]), "diff": diff["counts"], "root": root,
                          **({"selection": selection} if selection is not None else {})})
            _write_atomic(folder / "index.json", json.dumps(index, indent=1).encode())
    return {"graph_version": version, "previous_graph_version": previous, **diff["counts"],
            "changes": diff["changes"][:FIRST_PAGE],
            "next_offset": FIRST_PAGE if len(diff["changes"]) > FIRST_PAGE else None}


# --- diff ----------------------------------------------------------------------------------

def empty_diff() -> dict[str, Any]:
    return {**_counts([], {"added": 0, "removed": 0, "changed": 0}), "changes": []}


def _counts(changes: list[dict[str, Any]], modules: dict[str, int]) -> dict[str, Any]:
    totals = dict.fromkeys(CHANGE_ORDER, 0)
    by_kind: dict[str, dict[str, int]] = {k: dict.fromkeys(CHANGE_ORDER, 0) for k in ENTITY_KINDS}
    by_aspect: dict[str, int] = defaultdict(int)
    for change in changes:
        totals[change["change"]] += 1
        by_kind[change["kind"]][change["change"]] += 1
        for aspect in change.get("aspects", ()):
            by_aspect[aspect] += 1
    by_kind = {kind: {k: n for k, n in row.items() if n} for kind, row in by_kind.items() if any(row.values())}
    return {"counts": {**totals, "by_kind": by_kind, "by_aspect": dict(sorted(by_aspect.items())),
                       "modules": modules}}


def aspect_changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    return sorted(a for a in set(old) | set(new) if old.get(a) != new.get(a))


def diff_snapshots(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """{counts: {added, removed, changed, affected, by_kind, by_aspect, modules}, changes: [...]}.

    `changes` is ordered added, removed, changed, affected, each by name."""
    before, after = old.get("entities", {}), new.get("entities", {})
    changes = []
    for key in after.keys() - before.keys():
        changes.append({"entity": key, "kind": after[key]["k"], "change": "added", "file": after[key]["f"]})
    for key in before.keys() - after.keys():
        changes.append({"entity": key, "kind": before[key]["k"], "change": "removed", "file": before[key]["f"]})
    for key in after.keys() & before.keys():
        aspects = aspect_changes(before[key]["h"], after[key]["h"])
        if aspects:
            own = any(a in OWN_ASPECTS for a in aspects)
            changes.append({"entity": key, "kind": after[key]["k"], "change": "changed" if own else "affected",
                            "file": after[key]["f"], "aspects": aspects})
    changes.sort(key=lambda c: (CHANGE_ORDER[c["change"]], c["entity"]))
    mb, ma = old.get("modules", {}), new.get("modules", {})
    modules = {"added": len(ma.keys() - mb.keys()), "removed": len(mb.keys() - ma.keys()),
               "changed": sum(1 for k in ma.keys() & mb.keys() if ma[k]["h"] != mb[k]["h"])}
    return {**_counts(changes, modules), "changes": changes}


# --- resolving `since` ---------------------------------------------------------------------

def dataset_versions(meta: dict[str, Any], settings: Any, backend: str) -> dict[str, str]:
    """The graph version of each code base a dataset was built from: `source.graph_versions`,
    else (datasets written before versions existed) its fingerprint where a code base recorded it."""
    source = meta.get("source") or {}
    if source.get("graph_versions"):
        return dict(source["graph_versions"])
    fingerprint = source.get("graph_fingerprint")
    found = {}
    root = versions_root(settings, backend)
    names = source.get("codebases") or ([p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else [])
    for name in names:
        try:
            if any(v["version"] == fingerprint for v in read_index(settings, backend, name)):
                found[name] = fingerprint
        except ConfigError:
            continue
    return found


def source_versions(source: Any) -> dict[str, str]:
    """The graph version of each code base an open GraphSource reads ({} where the source
    cannot tell, e.g. a Neo4j graph graphtune did not write)."""
    graph = getattr(source, "graph", None)
    if graph is None:
        return {}
    names = source.codebases if source.codebases is not None else source.known_codebases()
    return {name: codebase_version(graph.file_shas(name), name) for name in names}
