"""The graph-version snapshot's hashes of each entity's own aspects (signature, docstring, body,
bases): one definition, run in two places.

Why two: hashing every entity's `source` after the load meant reading all of it back from the
store and hashing it in the one process that writes the store (Java util+io: ~0.45 s of a 3 s
ingest). The ingest's parser processes now hash the rows they have just parsed, in parallel,
and the snapshot reads only the small properties its derived aspects need. The snapshot still
hashes records read from the graph when the parsed rows cannot answer for the stored graph: an
entity not parsed in this ingest (an incremental ingest's unchanged files), or a class whose
body or signature depends on another file (a Go method or a Rust impl stored beside another
file than its type). Both paths run `own_hashes` on the same record shape (`stored_records`
mirrors what the store gives back for a row), so the snapshot is the same either way.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

from graphtune.tools.graph.records import CodeRecord

# (node type, qualified name) -> (file path, hash or None per aspect of CALLABLE_ASPECTS / CLASS_ASPECTS)
OwnHashes = dict[tuple[str, str], tuple[Any, ...]]
CALLABLE_ASPECTS = ("signature", "docstring", "body")
CLASS_ASPECTS = ("signature", "docstring", "body", "bases")

_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str)
_STRING = json.encoder.encode_basestring  # C-accelerated; what _ENCODER writes for a str


def short_hash(*parts: Any) -> str:
    """A short hash of the JSON text of `parts` (stored in snapshots: the text must never change).
    This runs several times per entity of every ingest, so the shapes it gets (strings, lists
    of strings, None, booleans) are written directly, exactly as `json.dumps` writes them;
    anything else goes through one shared encoder."""
    text = _fast_json(parts)
    if text is None:
        text = _ENCODER.encode(parts)
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def _fast_json(parts: tuple[Any, ...]) -> str | None:
    """`json.dumps(parts, ensure_ascii=False)` for strings, lists of strings, None and booleans
    (None for any other value: the caller falls back to the encoder)."""
    out = []
    for part in parts:
        cls = part.__class__
        if cls is str:
            out.append(_STRING(part))
        elif cls is list:
            if not all(item.__class__ is str for item in part):
                return None
            out.append("[" + ", ".join(map(_STRING, part)) + "]")
        elif part is None:
            out.append("null")
        elif part is True or part is False:
            out.append("true" if part else "false")
        else:
            return None
    return "[" + ", ".join(out) + "]"


def _owner(record: Any) -> str:
    """The entity whose body holds this one's source: a method's class, else the name's parent."""
    return record.class_name if record.node_type == "Method" else record.key.rpartition(".")[0]


def own_hashes(callables: list[Any], classes: list[Any]) -> OwnHashes:
    """Own-aspect hashes of Function/Method (`callables`, functions first) and Class records, in
    the graph's order. A class's body is its source without its methods' and nested classes'
    sources; its signature is its `__init__`'s (the last one) and its decorators."""
    inits = {r.class_name: r for r in callables if r.node_type == "Method" and r.name == "__init__" and r.class_name}
    nested: dict[str, list[str]] = defaultdict(list)  # class -> sources of its methods and nested classes
    for record in callables + classes:
        owner = _owner(record)
        if owner and record.source:
            nested[owner].append(record.source)
    out: OwnHashes = {}
    for r in callables:
        out[(r.node_type, r.key)] = (
            r.file_path, short_hash(r.signature, list(r.parameters), r.return_type, bool(r.is_async)),
            short_hash(r.docstring) if r.docstring else None, short_hash(r.source) if r.source else None)
    for r in classes:
        own = r.source or ""
        for inner in nested.get(r.key, ()):
            own = own.replace(inner, "", 1)
        init = inits.get(r.key)
        out[("Class", r.key)] = (
            r.file_path,
            short_hash(init.signature if init else "", list(init.parameters) if init else [], list(r.decorators)),
            short_hash(r.docstring) if r.docstring else None, short_hash(own) if own else None,
            short_hash(list(r.base_classes)) if r.base_classes else None)
    return out


Keys = set[tuple[str, str]]  # (node type, qualified name)


def stale(own: OwnHashes, callables: list[Any], classes: list[Any]) -> tuple[Keys, Keys]:
    """Which hashes made per parsed file cannot answer for these stored records (text-less
    ones will do), and which records to read in full to redo them: (redo, read).

    Redo: an entity not hashed from the file it is stored under, and a class that depends on
    another file (a method, its `__init__` or a nested definition stored elsewhere: Go methods,
    Rust impls) or on an entity to redo. Read: those, and every entity such a class owns (its
    body is its source without theirs), so `own_hashes` over them repeats the snapshot's walk."""
    class_files = {r.key: r.file_path for r in classes}
    redo: Keys = set()
    for r in (*callables, *classes):
        got = own.get((r.node_type, r.key))
        owner = _owner(r)
        if got is None or got[0] != r.file_path:
            redo.add((r.node_type, r.key))
            if owner in class_files:
                redo.add(("Class", owner))
        elif class_files.get(owner, r.file_path) != r.file_path:
            redo.add(("Class", owner))
    if not redo:
        return redo, set()
    dependent = {key for label, key in redo if label == "Class"}
    read = redo | {(r.node_type, r.key) for r in (*callables, *classes) if _owner(r) in dependent}
    return redo, read


def _text(value: Any) -> str:
    """A text property as the store gives it back, `or ""` applied (as GraphSource does); the
    other shapes as csv_rows writes them."""
    if value is None or value.__class__ is str:
        return value or ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value) if value else "[]"
    return str(value)


def _list(value: Any) -> list[Any]:
    """A JSON-list property after its trip through the store (csv_rows writes `json.dumps`,
    sources reads `json.loads`); lists of strings come back equal, so they skip the trip."""
    if not value:
        return []
    if value.__class__ is list and all(item.__class__ is str for item in value):
        return list(value)
    return json.loads(json.dumps(value))


def stored_records(graph: Any) -> tuple[list[CodeRecord], list[CodeRecord]]:
    """(callables, classes) of one parsed file (a FileGraph) as EmbeddedSource.iter_records
    reads them back from the store (strings survive the CSV load unchanged), in stored order:
    functions, methods, classes (tests/integration/graph/test_version_hashes.py). The store
    gives classes back from an aggregation, in no fixed order; here they come in file order.
    That order only decides in which order a class's nested classes are cut out of its body,
    which gives the same text either way unless one nested class's whole text also occurs
    earlier in the body (and then the store's order was no more fixed than this one)."""
    callables = [CodeRecord(label, r["qualified_name"], r["name"], r["file_path"], _text(r.get("docstring")),
                            _text(r.get("signature")), _list(r.get("parameters")), _text(r.get("return_type")),
                            _text(r.get("source")), _text(r.get("class_name")) if label == "Method" else "",
                            is_async=bool(r.get("is_async")))
                 for label, rows in (("Function", graph.functions), ("Method", graph.methods)) for r in rows]
    classes = [CodeRecord("Class", r["qualified_name"], r["name"], r["file_path"], _text(r.get("docstring")),
                          source=_text(r.get("source")), base_classes=_list(r.get("base_classes")),
                          decorators=_list(r.get("decorators")))
               for r in graph.classes]
    return callables, classes
