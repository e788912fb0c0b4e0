"""What graphtune needs to know of a language: one `LanguageParser` subclass per language.

A language is one module (`lang_<name>.py`; Python's is python_parser.py) that subclasses
`LanguageParser`, plus one line in the registry, `languages.PARSERS`. Every table derives from
them: the file suffixes and module names of discovery, the grammars of ts_common (the classes'
`grammars`), the grammars and call queries warmed before the parser processes fork, the parse
dispatch of the ingest, and the words the datasets use (code fence, display name, unit).

Imports nothing: the language modules import it, and it must not import them back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from graphtune.tools.graph.python_parser import FileGraph


class LanguageParser:
    """One language. Subclasses set the class attributes and implement `parse`; `marker`,
    `read_marker` and `module_name` only where module names need a project file (go.mod)."""

    name: ClassVar[str]  # the `language` of its files (CodeFile.language, `languages=[...]`)
    suffixes: ClassVar[tuple[str, ...]]  # lower-case file name endings, e.g. (".go",)
    display: ClassVar[str]  # "Go": what dataset prompts call it
    fence: ClassVar[str]  # the Markdown code fence's info string
    unit: ClassVar[str] = "module"  # what a CodeFile's module_name names, in the language's own word
    # grammar name -> (grammar wheel module, function returning the grammar); empty: no tree-sitter
    grammars: ClassVar[dict[str, tuple[str, str]]] = {}
    calls: ClassVar[str] = ""  # tree-sitter query capturing every call as @call
    # a project file (go.mod, Cargo.toml) whose folders discovery records for module_name's `marked`
    marker: ClassVar[str | None] = None

    def grammar_for(self, path: str) -> str:
        """The grammar that parses this file (TypeScript: `.tsx` has its own)."""
        return self.name

    def read_marker(self, path: str, rel_dir: str) -> str:
        """What the `marker` file at `path` (in folder `rel_dir`) says module names start with."""
        raise NotImplementedError

    def module_name(self, rel: str, root_name: str, marked: dict[str, str]) -> str:
        """The module name of the file at `rel` (relative to the ingest's base folder), as the
        language's imports name it; `marked`: folder -> read_marker() of each marker file found."""
        return rel.rpartition("/")[0].replace("/", ".") or root_name

    def parse(self, path: str, module_name: str, data: bytes, *, is_package: bool = False) -> FileGraph:
        """One file's rows; raises ValueError (SyntaxError for Python) on source it cannot read."""
        raise NotImplementedError

    @staticmethod
    def grammar_spec(grammar: str) -> tuple[str, str]:
        """(wheel module, function) of a grammar name, from the `grammars` of the parser classes."""
        pending: list[type[LanguageParser]] = [LanguageParser]
        while pending:
            cls = pending.pop()
            if grammar in cls.grammars:
                return cls.grammars[grammar]
            pending.extend(cls.__subclasses__())
        raise KeyError(grammar)


def nearest(folder: str, marked: dict[str, str]) -> str | None:
    """The closest folder at or above `folder` that `marked` knows (a go.mod's, a Cargo.toml's)."""
    probe = folder or "."
    while True:
        if probe in marked:
            return probe
        if probe in (".", ""):
            return None
        probe = probe.rpartition("/")[0] or "."
