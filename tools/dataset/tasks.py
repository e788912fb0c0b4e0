"""Instruction tasks built from one record (augmentation). Every answer comes from the graph:
the code, its docstring, its signature and its relationships; nothing is invented.

`tasks_for(record)` lists every task the record supports, most useful first. Extraction
with augmentation_factor N keeps up to N of them (distinct task types, so never duplicates).
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Callable

from graphtune.tools.graph.languages import DISPLAY, FENCES, UNIT, language_of
from graphtune.tools.graph.records import CodeRecord

Task = tuple[str, str, str]  # (task name, user prompt, assistant answer)
MAX_SOURCE_CHARS = 6000
MAX_LIST = 25


def _lang(r: CodeRecord) -> str:
    """The record's language by its file's extension (graphs from elsewhere: Python)."""
    return language_of(r.file_path) or "python"


def _code(source: str, language: str = "python") -> str:
    marker = "#" if language == "python" else "//"
    text = source if len(source) <= MAX_SOURCE_CHARS else source[:MAX_SOURCE_CHARS] + f"\n{marker} ... (truncated)"
    return f"```{FENCES[language]}\n{text}\n```"


def _bullets(items: list[str]) -> str:
    shown = [f"- `{item}`" for item in sorted(set(items))[:MAX_LIST]]
    more = len(set(items)) - MAX_LIST
    return "\n".join(shown + ([f"- ... and {more} more"] if more > 0 else []))


def _strip_docstring(source: str, docstring: str) -> str:
    """The source without its docstring statement (for 'write the docstring' tasks)."""
    if not docstring:
        return source
    try:
        node = ast.parse(textwrap.dedent(source)).body[0]
    except (SyntaxError, IndexError, ValueError):
        return source
    body = getattr(node, "body", None)
    first = body[0] if body else None
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)):
        return source
    lines = source.splitlines()
    del lines[first.lineno - 1:first.end_lineno]
    if len(body) == 1:  # the docstring was the whole body: keep the code valid
        indent = " " * (first.col_offset + len(lines[0]) - len(lines[0].lstrip()) if lines else 4)
        lines.insert(first.lineno - 1, indent + "...")
    return "\n".join(lines)


def _kind(r: CodeRecord) -> str:
    return "method" if r.node_type == "Method" else "function"


def _params_answer(r: CodeRecord) -> str:
    lines = [f"`{r.key}` has the signature `{r.signature}`."]
    params = [p for p in r.parameters if p.split(":")[0].split("=")[0].strip().lstrip("*") not in ("self", "cls")]
    if params:
        lines.append("Parameters:\n" + "\n".join(f"- `{p}`" for p in params))
    else:
        lines.append("It takes no parameters" + (" besides the instance." if r.node_type == "Method" else "."))
    lines.append(f"It returns `{r.return_type}`." if r.return_type else "Its return type is not annotated.")
    return "\n".join(lines)


def _callable_tasks(r: CodeRecord) -> list[Task]:
    kind, where = _kind(r), f" of class `{r.class_name}`" if r.class_name else ""
    lang = _lang(r)
    name = DISPLAY[lang]
    tasks: list[Task] = []
    if r.docstring:
        tasks.append(("explain", f"Explain what the {name} {kind} `{r.key}`{where} does.\n\n{_code(r.source, lang)}",
                      r.docstring))
        summary = r.docstring.strip().split("\n\n")[0]
        tasks.append(("implement", f"Write the {name} {kind} `{r.signature}`{where}. It should do the following:\n\n"
                      f"{summary}", _code(r.source, lang)))
        body = _strip_docstring(r.source, r.docstring) if lang == "python" else r.source
        if body != r.source:
            tasks.append(("document", f"Write a docstring for this Python {kind}.\n\n{_code(body)}", r.docstring))
    if r.signature:
        tasks.append(("signature", f"What are the parameters and the return type of `{r.key}`?", _params_answer(r)))
    if r.calls:
        tasks.append(("calls", f"Which functions or methods of this code base does `{r.key}` call?",
                      f"`{r.key}` calls:\n{_bullets(r.calls)}"))
    if r.called_by:
        tasks.append(("callers", f"Which functions or methods of this code base call `{r.key}`?",
                      f"`{r.key}` is called by:\n{_bullets(r.called_by)}"))
    if r.file_path:
        owner = f" as a method of class `{r.class_name}`" if r.class_name else f" at {UNIT[lang]} level"
        tasks.append(("locate", f"Where is `{r.name}` (`{r.key}`) defined?",
                      f"`{r.key}` is defined in `{r.file_path}`{owner}."))
    return tasks


def _class_tasks(r: CodeRecord) -> list[Task]:
    lang = _lang(r)
    tasks: list[Task] = []
    if r.docstring:
        tasks.append(("explain", f"Explain the purpose of the {DISPLAY[lang]} class `{r.key}`.", r.docstring))
        body = _strip_docstring(r.source, r.docstring) if lang == "python" else r.source
        if body != r.source and len(r.source) <= MAX_SOURCE_CHARS:
            tasks.append(("document", f"Write a class docstring for this Python class.\n\n{_code(body)}", r.docstring))
    if r.members:
        tasks.append(("methods", f"List the methods of class `{r.key}`.",
                      f"Class `{r.key}` defines these methods:\n{_bullets(r.members)}"))
    if r.base_classes:
        tasks.append(("inheritance", f"Which classes does `{r.key}` inherit from?",
                      f"`{r.key}` inherits from:\n{_bullets(r.base_classes)}"))
    if r.docstring and r.source and len(r.source) <= MAX_SOURCE_CHARS:
        tasks.append(("implement", f"Implement the {DISPLAY[lang]} class `{r.name}`:\n\n"
                      f"{r.docstring.split(chr(10) * 2)[0]}", _code(r.source, lang)))
    return tasks


def _file_tasks(r: CodeRecord) -> list[Task]:
    unit = UNIT[_lang(r)]
    tasks: list[Task] = []
    if r.description or r.members:
        answer = (r.description + "\n\n" if r.description else "") + (
            f"It defines:\n{_bullets(r.members)}" if r.members else "")
        tasks.append(("summarize", f"What does the {unit} `{r.name}` (`{r.file_path}`) provide?", answer.strip()))
    if r.imports:
        tasks.append(("imports", f"Which {unit}s of this code base does `{r.name}` import?",
                      f"`{r.name}` imports:\n{_bullets(r.imports)}"))
    return tasks


def _pattern_tasks(r: CodeRecord) -> list[Task]:
    tasks: list[Task] = []
    if r.description:
        practice = f"\n\nBest practices: {r.best_practices}" if r.best_practices else ""
        tasks.append(("explain", f"Explain the `{r.name}` pattern ({r.category}).", r.description + practice))
    if r.used_by:
        tasks.append(("usages", f"Where does this code base use the `{r.name}` pattern?",
                      f"The `{r.name}` pattern is implemented by:\n{_bullets(r.used_by)}"))
    return tasks


BUILDERS: dict[str, Callable[[CodeRecord], list[Task]]] = {
    "Function": _callable_tasks, "Method": _callable_tasks, "Class": _class_tasks,
    "CodeFile": _file_tasks, "Pattern": _pattern_tasks}


def tasks_for(record: CodeRecord) -> list[Task]:
    return BUILDERS[record.node_type](record)
