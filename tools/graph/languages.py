"""Which languages graphtune reads: the registry, one `LanguageParser` per language.

`PARSERS` is the one list; the suffix map, the tables the datasets use, the parse dispatch and
the grammars warmed before the parser processes fork all derive from it. Adding a language is a
module implementing `LanguageParser` (language_parser.py) and one line here.

Imports nothing heavy: the language modules import tree-sitter only when their first file is
parsed (Python keeps its `ast` path), so discovery and the datasets can use the tables.
"""

from __future__ import annotations

from typing import Any

from graphtune.tools.graph.lang_go import GoParser
from graphtune.tools.graph.lang_java import JavaParser
from graphtune.tools.graph.lang_rust import RustParser
from graphtune.tools.graph.lang_typescript import JavaScriptParser, TypeScriptParser
from graphtune.tools.graph.language_parser import LanguageParser
from graphtune.tools.graph.python_parser import FileGraph, PythonParser

PARSERS: tuple[LanguageParser, ...] = (
    PythonParser(),
    TypeScriptParser(),
    JavaScriptParser(),
    GoParser(),
    JavaParser(),
    RustParser(),
)

BY_NAME: dict[str, LanguageParser] = {parser.name: parser for parser in PARSERS}
EXTENSIONS: dict[str, str] = {suffix: parser.name for parser in PARSERS for suffix in parser.suffixes}
LANGUAGES = tuple(BY_NAME)
FENCES = {parser.name: parser.fence for parser in PARSERS}
DISPLAY = {parser.name: parser.display for parser in PARSERS}
UNIT = {parser.name: parser.unit for parser in PARSERS}  # what a CodeFile's module_name names


def language_of(path: str) -> str | None:
    """The language of a file by its extension (`a.d.ts` is TypeScript), or None."""
    dot = path.rfind(".")
    return EXTENSIONS.get(path[dot:].lower()) if dot >= 0 else None


def parse_source(path: str, module_name: str, data: bytes, language: str, is_package: bool = False) -> FileGraph:
    """Parse one file with its language's parser. Python's `ast` raises its own errors; any other
    failure of a tree-sitter parser on odd input (also a gap in a parser) becomes a ValueError, the
    file's reported failure, never the job's."""
    parser = BY_NAME[language]
    if not parser.grammars:
        return parser.parse(path, module_name, data, is_package=is_package)
    try:
        return parser.parse(path, module_name, data, is_package=is_package)
    except (ValueError, RecursionError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 (one odd file must not fail an ingest of thousands)
        raise ValueError(f"{language} parser failed: {type(exc).__name__}: {exc}") from exc


def warm(files: list[Any]) -> None:
    """Load the tree-sitter grammar, parser and call query of every grammar these files (SourceFile)
    need, once, in this process: called before the parser processes fork, which then inherit them
    instead of each loading its own (imports + grammar + query: ~50 ms of CPU per process for
    TypeScript, a tenth of what rxjs's 21k lines take to parse)."""
    from graphtune.tools.graph.ts_common import parser_for, query

    names: set[tuple[str, str]] = set()
    for item in files:
        parser = BY_NAME.get(item.language)
        if parser is not None and parser.grammars:
            names.add((parser.grammar_for(item.rel_path), parser.calls))
    for name, calls in sorted(names):
        parser_for(name)
        query(name, calls)
