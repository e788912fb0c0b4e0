"""Code base selection and pattern merging, shared by both graph sources (embedded, Neo4j).

Kept apart from graphtune.tools.graph.sources so that the Neo4j source does not import the
module that opens it (that was an import circle)."""

from __future__ import annotations

from collections.abc import Iterator

from graphtune.tools.errors import ConfigError
from graphtune.tools.graph.records import CodeRecord

__all__ = ["check_codebases", "merge_patterns"]


def check_codebases(wanted: list[str] | None, known: list[str]) -> list[str] | None:
    """The validated selection (None = all); an unknown name is a ConfigError listing the known ones."""
    if wanted is None:
        return None
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        listing = ", ".join(sorted(known)) or "none (ingest one first)"
        raise ConfigError(f"unknown code base(s) {', '.join(map(repr, unknown)) or '(empty list)'} in `codebases`; "
                          f"the graph holds: {listing}.", field="codebases",
                          hint="Pass names from that list, or omit `codebases` to use every code base "
                          "(validate_environment lists them).")
    return list(dict.fromkeys(wanted))


def merge_patterns(records: Iterator[CodeRecord]) -> Iterator[CodeRecord]:
    """Each code base has its own Pattern nodes; extraction sees one record per pattern name,
    its users gathered from every selected code base (in code base order)."""
    merged: dict[str, CodeRecord] = {}
    for record in records:
        first = merged.setdefault(record.key, record)
        if first is not record:
            first.used_by = [*first.used_by, *record.used_by]
    for record in merged.values():
        record.used_by = list(record.used_by)[:20]
        yield record
