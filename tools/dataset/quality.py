"""Quality score 0..1 per record, from documented factors (docs/dataset.md).

Calibration: code with a substantive docstring that explains its parameters and result
passes the default threshold 0.8 with or without annotations; code without a docstring
cannot pass (the docstring factors alone weigh 0.6). The weights per node type sum to 1.
"""

from __future__ import annotations

import re

from graphtune.tools.graph.records import CodeRecord

WEIGHTS = {"docstring": 0.40, "params_documented": 0.20, "types": 0.10, "returns": 0.15, "examples": 0.05,
           "length": 0.10}
RETURN_WORDS = {"return", "returns", "returned", "Return", "Returns", "RETURNS", "yield", "yields", "Yield", "Yields",
                "rtype", "gives", "produces"}
TYPE_WORDS = {"int", "str", "bool", "float", "list", "dict", "tuple", "None", "bytes", "type", "rtype", "Optional"}
SCAN_CHARS = 4000  # word-level factors look at the head of very long docstrings only
_RETURNS_VALUE = re.compile(r"^\s*(return\s+[^\s#]|yield\b)", re.M)
_WORD = re.compile(r"\w+")
SKIP_PARAMS = {"self", "cls"}


def has_example(doc: str) -> bool:
    return bool(doc) and (">>>" in doc or "xample" in doc or "```" in doc or "Usage" in doc or "usage" in doc)


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _doc_factor(words: int) -> float:
    return 1.0 if words >= 12 else 0.75 if words >= 6 else 0.35 if words >= 3 else 0.0


def docstring_factor(doc: str) -> float:
    return _doc_factor(_words(doc)) if doc else 0.0


def _param_names(record: CodeRecord) -> list[str]:
    names = []
    for text in record.parameters:
        name = text.lstrip("*.").split(":")[0].split("=")[0].strip()
        if name and name not in SKIP_PARAMS:
            names.append(name)
    return names


def _callable_factors(r: CodeRecord) -> dict[str, float]:
    names = _param_names(r)
    doc = r.docstring
    words = _WORD.findall(doc[:SCAN_CHARS]) if doc else []  # scanned once: the hottest line of extraction
    doc_words = set(words)
    documented = sum(1 for n in names if n in doc_words)
    annotated = sum(1 for p in r.parameters if ":" in p and p.split(":")[0].strip() not in SKIP_PARAMS)
    type_ratio = (annotated + (1 if r.return_type else 0)) / (len(names) + 1)
    if r.return_type or not RETURN_WORDS.isdisjoint(doc_words) or "->" in doc:
        returns = 1.0
    elif not doc:
        returns = 0.0
    else:  # documented, result not mentioned: fine only when nothing is returned
        returns = 0.0 if ("return" in r.source or "yield" in r.source) and _RETURNS_VALUE.search(r.source) else 1.0
    lines = r.source.count("\n") + 1
    return {
        "docstring": _doc_factor(len(words)),
        "params_documented": documented / len(names) if names else (1.0 if doc else 0.0),
        "types": 1.0 if type_ratio >= 1.0 or not TYPE_WORDS.isdisjoint(doc_words) else type_ratio,
        "returns": returns,
        "examples": 1.0 if has_example(doc) else 0.0,
        "length": 1.0 if 2 <= lines <= 200 else 0.5 if lines <= 400 else 0.0,
    }


def _class_factors(r: CodeRecord) -> dict[str, float]:
    lines = r.source.count("\n") + 1
    return {
        "docstring": docstring_factor(r.docstring),
        "params_documented": 1.0 if r.members and _words(r.docstring) >= 12 else (0.5 if r.docstring else 0.0),
        "types": 1.0 if r.docstring and (": " in r.source or not TYPE_WORDS.isdisjoint(_WORD.findall(r.docstring))) else 0.0,
        "returns": 1.0 if r.members else 0.5,
        "examples": 1.0 if has_example(r.docstring) else 0.0,
        "length": 1.0 if 2 <= lines <= 600 else 0.5,
    }


def _file_factors(r: CodeRecord) -> dict[str, float]:
    return {"docstring": docstring_factor(r.description), "params_documented": 1.0 if r.members else 0.0,
            "types": 1.0 if r.description else 0.0, "returns": 1.0 if r.members else 0.0,
            "examples": 1.0 if r.imports else 0.0, "length": 1.0}


def _pattern_factors(r: CodeRecord) -> dict[str, float]:
    return {"docstring": docstring_factor(r.description), "params_documented": 1.0 if r.best_practices else 0.0,
            "types": 1.0 if r.category else 0.0, "returns": 1.0 if r.used_by or r.example else 0.0,
            "examples": 1.0 if r.example or r.used_by else 0.0, "length": 1.0}


FACTORS = {"Function": _callable_factors, "Method": _callable_factors, "Class": _class_factors,
           "CodeFile": _file_factors, "Pattern": _pattern_factors}


_WEIGHT_ORDER = tuple(WEIGHTS.items())  # every factor dict lists the factors in this order


def score(record: CodeRecord) -> float:
    factors = FACTORS[record.node_type](record)
    total = 0.0
    for name, weight in _WEIGHT_ORDER:  # same additions, same order as a sum over the factors
        total += weight * factors[name]
    return round(total, 4)
