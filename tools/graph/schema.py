"""The graph schema graphtune writes and reads by default (see docs/graph.md).

List-valued properties (parameters, decorators, base classes, raw calls) are stored as JSON
text in the embedded store, which keeps bulk CSV loading exact; Neo4j receives real lists.

Code bases: every node carries `codebase` (the name of the code base it came from) and a
primary key `uid` = "<codebase>:<natural key>" (natural key: qualified_name, path, parameter
id or pattern name). Two code bases may both define `utils.helper`; the readable properties
(`qualified_name`, `path`, `name`) stay as they were, only `uid` is unique. One `CodeBase`
node per code base records its root and the time of its last ingest.
"""

from __future__ import annotations

SCHEMA_VERSION = 2  # 1: one global code base keyed by qualified name (before code bases existed)
KEY = [("uid", "STRING"), ("codebase", "STRING")]
NODE_TABLES: dict[str, list[tuple[str, str]]] = {
    "CodeFile": [("path", "STRING"), ("module_name", "STRING"), ("description", "STRING"), ("language", "STRING"),
                 ("sha", "STRING"), ("lines", "INT64"), ("aliases", "STRING"), ("imports", "STRING"),
                 ("inherits", "STRING")],  # inherits: [class, raw base] of classes of other files (Rust impls)
    "Class": [("qualified_name", "STRING"), ("name", "STRING"), ("file_path", "STRING"), ("docstring", "STRING"),
              ("base_classes", "STRING"), ("decorators", "STRING"), ("start_line", "INT64"), ("end_line", "INT64"),
              ("source", "STRING"), ("kind", "STRING")],  # kind: class/interface/struct/trait/enum/...
    "Function": [("qualified_name", "STRING"), ("name", "STRING"), ("file_path", "STRING"), ("docstring", "STRING"),
                 ("signature", "STRING"), ("parameters", "STRING"), ("return_type", "STRING"), ("is_async", "BOOLEAN"),
                 ("decorators", "STRING"), ("start_line", "INT64"), ("end_line", "INT64"), ("source", "STRING"),
                 ("raw_calls", "STRING")],
    "Parameter": [("id", "STRING"), ("name", "STRING"), ("type", "STRING"), ("default", "STRING"),
                  ("order", "INT64"), ("kind", "STRING"), ("owner", "STRING"), ("file_path", "STRING")],
    "Pattern": [("name", "STRING"), ("description", "STRING"), ("category", "STRING"), ("example", "STRING"),
                ("best_practices", "STRING")],
}
NODE_TABLES["Method"] = NODE_TABLES["Function"] + [("class_name", "STRING")]
NATURAL_KEYS = {"CodeFile": "path", "Class": "qualified_name", "Function": "qualified_name",
                "Method": "qualified_name", "Parameter": "id", "Pattern": "name"}
NODE_TABLES = {table: KEY + columns for table, columns in NODE_TABLES.items()}
NODE_TABLES["CodeBase"] = [("name", "STRING"), ("root", "STRING"), ("ingested_at", "STRING")]
PRIMARY_KEYS = {**dict.fromkeys(NATURAL_KEYS, "uid"), "CodeBase": "name"}
SCOPED_TABLES = tuple(NATURAL_KEYS)  # the tables whose nodes belong to a code base
REL_TABLES: dict[str, list[tuple[str, str]]] = {
    "DEFINES": [("CodeFile", "Class"), ("CodeFile", "Function")],
    "HAS_METHOD": [("Class", "Method")],
    "INHERITS": [("Class", "Class")],
    "HAS_PARAMETER": [("Function", "Parameter"), ("Method", "Parameter")],
    "IMPORTS": [("CodeFile", "CodeFile")],
    "CALLS": [("Function", "Function"), ("Function", "Method"), ("Method", "Function"), ("Method", "Method")],
    "IMPLEMENTS_PATTERN": [("Class", "Pattern"), ("Function", "Pattern"), ("Method", "Pattern")],
}
JSON_LIST_PROPS = {"base_classes", "decorators", "parameters", "raw_calls", "imports", "inherits"}
DERIVED_RELS = ("CALLS", "INHERITS", "IMPORTS")  # recomputed for a code base after each of its ingests
CODEBASE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def uid(codebase: str, key: str) -> str:
    """The primary key of a node of `codebase` whose natural key is `key` (':' never occurs in a name)."""
    return f"{codebase}:{key}"


def unscoped(value: str) -> str:
    """The natural key back from a uid."""
    return value.partition(":")[2]


def graph_fingerprint(file_shas: dict[str, str]) -> str:
    """A short hash of every file key ("codebase:path") and content hash: equal graphs of code,
    equal fingerprints."""
    import hashlib

    digest = hashlib.sha256()
    for path, sha in sorted(file_shas.items()):
        digest.update(f"{path}\0{sha}\n".encode())
    return digest.hexdigest()[:16]


def ddl() -> list[str]:
    statements = []
    for table, columns in NODE_TABLES.items():
        cols = ", ".join(f"`{name}` {kind}" for name, kind in columns)
        statements.append(f"CREATE NODE TABLE IF NOT EXISTS {table}({cols}, PRIMARY KEY(`{PRIMARY_KEYS[table]}`))")
    for rel, pairs in REL_TABLES.items():
        spec = ", ".join(f"FROM {a} TO {b}" for a, b in pairs)
        statements.append(f"CREATE REL TABLE IF NOT EXISTS {rel}({spec})")
    return statements
