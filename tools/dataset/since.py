"""A delta's `since`: a recorded graph version of a code base, or a dataset's name (the versions it
was built from). Reading a dataset's metadata makes this the dataset layer's; the versions
themselves live in graphtune.tools.graph.versions, which knows nothing of datasets."""

from __future__ import annotations

from typing import Any

from graphtune.tools.dataset.catalog import read_metadata
from graphtune.tools.errors import ConfigError, DatasetNotFound, VersionNotFound, shown
from graphtune.tools.graph.versions import (
    current_version,
    dataset_versions,
    diff_snapshots,
    load_snapshot,
    read_index,
    versions_root,
)


def resolve_since(settings: Any, backend: str, codebase: str, since: str | None) -> str | None:
    """A graph version of `codebase` from `since`: a recorded version, or a dataset's name (its
    version of this code base); None (since omitted) = the version before the current one."""
    index = read_index(settings, backend, codebase)
    if not index:
        raise VersionNotFound(f"code base `{codebase}` has no recorded graph version in the {backend} store.",
                              field="codebase", hint="Ingest it (ingest_codebase); every ingest records a version. "
                              "validate_environment lists the code bases.")
    if since is None:
        return index[-1]["previous"]
    if any(v["version"] == since for v in index):
        return since
    try:
        meta = read_metadata(settings, since, "since")
    except (DatasetNotFound, ConfigError):
        meta = None
    if meta is None:
        raise VersionNotFound(f"`since`={shown(since)} is neither a recorded graph version of `{codebase}` nor a dataset.",
                              field="since", hint=f"Pass a dataset name (list_datasets) or one of the versions "
                              f"{[v['version'] for v in index][-10:]}.")
    version = dataset_versions(meta, settings, backend).get(codebase)
    if version is None:
        raise VersionNotFound(f"dataset `{since}` records no graph version of code base `{codebase}`.",
                              field="since", hint="It was built from other code bases, or before graph versions "
                              "were recorded; pass a graph version instead (graph_diff without `since` shows them).")
    return version


def diff_versions(settings: Any, backend: str, codebase: str,
                  since: str | None) -> tuple[str | None, str, dict[str, Any]]:
    """(old version, current version, diff) of `codebase`; old None = everything is added."""
    old = resolve_since(settings, backend, codebase, since)
    new = current_version(settings, backend, codebase)
    assert new is not None
    before = load_snapshot(settings, backend, codebase, old) if old else {"entities": {}, "modules": {}}
    return old, new, diff_snapshots(before, load_snapshot(settings, backend, codebase, new))


def delta_bases(settings: Any, backend: str, codebases: list[str] | None, since: str) -> dict[str, str | None]:
    """For a delta dataset: the old graph version of each code base (None: the code base is new
    since then, every entity counts as added). `since` is a graph version or a dataset name."""
    root = versions_root(settings, backend)
    names = codebases or (sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else [])
    try:
        meta = read_metadata(settings, since, "since")
    except (DatasetNotFound, ConfigError):
        meta = None
    found: dict[str, str | None] = {}
    for name in names:
        if meta is not None:
            found[name] = dataset_versions(meta, settings, backend).get(name)
        else:
            found[name] = since if any(v["version"] == since for v in read_index(settings, backend, name)) else None
    if not any(found.values()):
        what = f"dataset `{since}` records no graph version of" if meta is not None else \
            f"`since`={shown(since)} is neither a dataset nor a recorded graph version of"
        raise VersionNotFound(f"{what} the code base(s) {names or '(none recorded)'}.", field="since",
                              hint="Pass the name of the dataset the current model was trained on (list_datasets), "
                              "or a graph version from graph_diff / the ingest result.")
    return found
