"""The graph schema graphtune writes and reads by default (see docs/graph.md).

List-valued properties (parameters, decorators, base classes, raw calls) are stored as JSON
text in the embedded store, which keeps bulk CSV loading exact; Neo4j receives real lists.
"""

from __future__ import annotations

NODE_TABLES: dict[str, list[tuple[str, str]]] = {
    "CodeFile": [("path", "STRING"), ("module_name", "STRING"), ("description", "STRING"), ("language", "STRING"),
                 ("sha", "STRING"), ("lines", "INT64"), ("aliases", "STRING"), ("imports", "STRING")],
    "Class": [("qualified_name", "STRING"), ("name", "STRING"), ("file_path", "STRING"), ("docstring", "STRING"),
              ("base_classes", "STRING"), ("decorators", "STRING"), ("start_line", "INT64"), ("end_line", "INT64"),
              ("source", "STRING")],
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
PRIMARY_KEYS = {"CodeFile": "path", "Class": "qualified_name", "Function": "qualified_name",
                "Method": "qualified_name", "Parameter": "id", "Pattern": "name"}
REL_TABLES: dict[str, list[tuple[str, str]]] = {
    "DEFINES": [("CodeFile", "Class"), ("CodeFile", "Function")],
    "HAS_METHOD": [("Class", "Method")],
    "INHERITS": [("Class", "Class")],
    "HAS_PARAMETER": [("Function", "Parameter"), ("Method", "Parameter")],
    "IMPORTS": [("CodeFile", "CodeFile")],
    "CALLS": [("Function", "Function"), ("Function", "Method"), ("Method", "Function"), ("Method", "Method")],
    "IMPLEMENTS_PATTERN": [("Class", "Pattern"), ("Function", "Pattern"), ("Method", "Pattern")],
}
JSON_LIST_PROPS = {"base_classes", "decorators", "parameters", "raw_calls", "imports"}
DERIVED_RELS = ("CALLS", "INHERITS", "IMPORTS")  # recomputed for the whole graph after each ingest


def graph_fingerprint(file_shas: dict[str, str]) -> str:
    """A short hash of every file path and content hash: equal graphs of code, equal fingerprints."""
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
