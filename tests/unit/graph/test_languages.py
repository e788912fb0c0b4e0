"""The language registry (tools/graph/languages.py): one `LanguageParser` per language, listed
once, and every table derived from that list (issue 20: a language is one module)."""

from __future__ import annotations

import importlib
import pkgutil

import graphtune.tools.graph as graph_pkg
from graphtune.tools.graph import languages
from graphtune.tools.graph.language_parser import LanguageParser
from graphtune.tools.graph.ts_common import grammar


def _parser_classes() -> set[type[LanguageParser]]:
    for info in pkgutil.iter_modules(graph_pkg.__path__):
        importlib.import_module(f"{graph_pkg.__name__}.{info.name}")
    found, pending = set(), [LanguageParser]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        found.add(cls)
    return found - {LanguageParser}


def test_every_language_parser_is_registered_once() -> None:
    registered = [type(parser) for parser in languages.PARSERS]
    assert len(set(registered)) == len(registered)
    assert _parser_classes() == set(registered), "a LanguageParser subclass is missing from languages.PARSERS"
    assert languages.LANGUAGES == tuple(parser.name for parser in languages.PARSERS)


def test_every_parser_declares_what_the_tables_need() -> None:
    seen: dict[str, str] = {}
    for parser in languages.PARSERS:
        assert parser.name and parser.display and parser.fence and parser.unit in ("module", "package")
        for suffix in parser.suffixes:
            assert suffix == suffix.lower() and suffix.startswith(".") and suffix not in seen, suffix
            seen[suffix] = parser.name
            assert languages.language_of(f"a/b{suffix.upper()}") == parser.name
        if parser.grammars:
            assert parser.calls and parser.grammar_for(f"x{parser.suffixes[0]}") in parser.grammars
    assert languages.EXTENSIONS == seen
    assert languages.language_of("types.d.ts") == "typescript" and languages.language_of("Makefile") is None


def test_every_grammar_loads_from_its_wheel() -> None:
    for parser in languages.PARSERS:
        for name in parser.grammars:
            assert LanguageParser.grammar_spec(name) == parser.grammars[name]
            assert grammar(name) is not None
