"""Which languages graphtune reads, told apart by file extension, and which parser reads each.

Imports nothing heavy: discovery and the datasets use the tables; a tree-sitter parser module is
imported only when the first file of its language is parsed (Python keeps its `ast` path).
"""

from __future__ import annotations

from typing import Any

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".ts": "typescript", ".tsx": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".go": "go",
    ".java": "java",
    ".rs": "rust",
}
LANGUAGES = ("python", "typescript", "javascript", "go", "java", "rust")
FENCES = {"python": "python", "typescript": "typescript", "javascript": "javascript", "go": "go", "java": "java",
          "rust": "rust"}
DISPLAY = {"python": "Python", "typescript": "TypeScript", "javascript": "JavaScript", "go": "Go", "java": "Java",
           "rust": "Rust"}
UNIT = {"python": "module", "typescript": "module", "javascript": "module", "go": "package", "java": "package",
        "rust": "module"}  # what a CodeFile's module_name names, in the language's own word
_PARSERS = {"typescript": "lang_typescript", "javascript": "lang_typescript", "go": "lang_go", "java": "lang_java",
            "rust": "lang_rust"}


def language_of(path: str) -> str | None:
    """The language of a file by its extension (`a.d.ts` is TypeScript), or None."""
    dot = path.rfind(".")
    return EXTENSIONS.get(path[dot:].lower()) if dot >= 0 else None


def parse_source(path: str, module_name: str, data: bytes, language: str) -> Any:  # FileGraph
    """Parse a non-Python file with its tree-sitter parser (imported on first use)."""
    import importlib

    module = importlib.import_module(f"graphtune.tools.graph.{_PARSERS[language]}")
    return module.parse(path, module_name, data, language)


def warm(files: list[Any]) -> None:
    """Load the tree-sitter grammar, parser and call query of every grammar these files (SourceFile)
    need, once, in this process: called before the parser processes fork, which then inherit them
    instead of each loading its own (imports + grammar + query: ~50 ms of CPU per process for
    TypeScript, a tenth of what rxjs's 21k lines take to parse)."""
    import importlib

    from graphtune.tools.graph.ts_common import parser_for, query

    grammars: dict[str, Any] = {}
    for item in files:
        if item.language in _PARSERS and item.language not in grammars:
            grammars[item.language] = importlib.import_module(f"graphtune.tools.graph.{_PARSERS[item.language]}")
    names: set[tuple[str, str]] = set()
    for item in files:
        module = grammars.get(item.language)
        if module is not None:
            names.add((module.grammar_for(item.rel_path) if hasattr(module, "grammar_for") else item.language,
                       module.CALLS))
    for name, calls in sorted(names):
        parser_for(name)
        query(name, calls)
