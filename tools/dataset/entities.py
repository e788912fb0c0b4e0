"""Entities and their atomic facts, read off graph records, for knowledge datasets.

A knowledge dataset teaches facts, not skills: where each function, method and class is
defined, its parameters, bases, methods, callers and callees. Every fact comes from the
graph, whatever the entity's docstring quality (facts do not need documentation), so the
quality score plays no part here.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from graphtune.tools.graph.languages import language_of
from graphtune.tools.graph.records import CodeRecord, files_by_module

_PARAM = re.compile(r"^(?P<stars>\*{0,2}|\.{3})(?P<name>\w+)\s*(?::\s*(?P<type>.+?))?\s*(?:=\s*(?P<default>.+))?$")
SKIP_PARAMS = {"self", "cls"}
CONSTRUCTORS = {"python": "__init__", "typescript": "constructor", "javascript": "constructor"}  # Java: the class name
MAX_NAMES = 30  # longest name list in one answer (a class's methods, a function's callers)


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str = ""
    default: str = ""
    stars: str = ""

    @property
    def display(self) -> str:
        text = f"{self.stars}{self.name}"
        if self.type:
            text += f": {self.type}"
        if self.default:
            text += f" = {self.default}"
        return text


def parse_param(text: str) -> Param | None:
    match = _PARAM.match(text.strip())
    if not match:
        return None
    return Param(match["name"], (match["type"] or "").strip(), (match["default"] or "").strip(), match["stars"])


@dataclass(slots=True)
class Entity:
    """One function, method or class, named three ways so questions can vary the naming."""

    kind: str  # "function" | "method" | "class"
    qualified: str  # email.utils.parseaddr
    short: str  # parseaddr, Message.get_payload
    module: str  # email.utils
    file_path: str
    class_short: str = ""
    params: list[Param] = field(default_factory=list)
    has_params_fact: bool = False
    signature: str = ""
    return_type: str = ""
    is_async: bool = False
    bases: list[str] = field(default_factory=list)
    subclasses: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    called_by: list[str] = field(default_factory=list)
    decorators: list[str] = field(default_factory=list)
    summary: str = ""
    ambiguous: bool = False  # the short name is shared with another entity: always qualify it
    language: str = "python"  # by the file's extension: answers say "package" for Go/Java, no `object` base
    codebase: str = ""  # the code base's name as ingested ("" when the graph has none)

    @property
    def public(self) -> bool:
        return not self.short.rsplit(".", 1)[-1].startswith("_")


@dataclass(slots=True)
class ModuleFacts:
    module: str
    file_path: str
    classes: list[str]
    functions: list[str]
    imports: list[str]
    summary: str = ""
    language: str = "python"
    codebase: str = ""


def first_sentence(doc: str, limit: int = 200) -> str:
    """The docstring's summary line (up to its first sentence end), trimmed to `limit` chars."""
    text = " ".join(doc.strip().split("\n\n")[0].split())
    match = re.search(r"(?<=[.!?])\s", text)
    text = text[: match.start()] if match else text
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _short_method(name: str) -> str:
    """`email.message.Message.get_payload` -> `Message.get_payload`."""
    return ".".join(name.split(".")[-2:])


def _module_of(record: CodeRecord) -> str:
    if record.node_type == "Method" and record.class_name:
        return record.class_name.rpartition(".")[0]
    return record.key.rpartition(".")[0]


def build_entities(records: list[CodeRecord], *, include_private: bool) -> tuple[list[Entity], list[ModuleFacts]]:
    """Entities (functions, methods, classes) and module facts, with cross references filled in.

    Private names (leading underscore) are skipped unless `include_private`; `__init__` never
    becomes an entity of its own: its parameters are the class's constructor parameters."""
    by_type: dict[str, list[CodeRecord]] = defaultdict(list)
    for record in records:
        by_type[record.node_type].append(record)
    entities: dict[str, Entity] = {}
    constructors: dict[str, CodeRecord] = {}
    for record in by_type["Class"]:
        entities[_uid(record)] = Entity("class", record.key, record.name, _module_of(record), record.file_path,
                                      bases=[_last(b) for b in record.base_classes], decorators=list(record.decorators),
                                      summary=first_sentence(record.docstring) if record.docstring else "",
                                      language=_language(record), codebase=record.codebase)
    for record in by_type["Function"] + by_type["Method"]:
        if record.node_type == "Method" and record.class_name and _constructor(record.name, record):
            constructors[_uid(record, record.class_name)] = record
            continue
        entities[_uid(record)] = _callable_entity(record)
    for record in by_type["Class"]:
        cls = entities[_uid(record)]
        cls.methods = sorted({m for m in record.members if (not m.startswith("_") or include_private)
                              and not _constructor(m, record)})
        init = constructors.get(_uid(record))
        if init is not None:
            cls.params = [p for p in map(parse_param, init.parameters) if p and p.name not in SKIP_PARAMS]
            cls.has_params_fact = True
            cls.signature = init.signature
    _link_subclasses_and_ambiguous_names(list(entities.values()))
    chosen = [e for e in entities.values() if include_private or (e.public and not _private_owner(e))]
    for entity in chosen:
        entity.subclasses = sorted(set(entity.subclasses))[:MAX_NAMES]
        entity.calls = sorted(set(entity.calls))[:MAX_NAMES]
        entity.called_by = sorted(set(entity.called_by))[:MAX_NAMES]
    classes: dict[str, set[str]] = defaultdict(set)
    functions: dict[str, set[str]] = defaultdict(set)
    for entity in chosen:
        if entity.kind == "class":
            classes[entity.module].add(_last(entity.qualified))
        elif entity.kind == "function":
            functions[entity.module].add(entity.short)
    modules = [_module_facts(name, parts, classes[name], functions[name])
               for name, parts in sorted(files_by_module(by_type["CodeFile"]).items())]
    # Sorted on every field that tells entities apart: the store returns records in the order a parallel
    # ingest wrote them, and a dataset must not depend on it (same graph -> same bytes).
    return sorted(chosen, key=lambda e: (e.qualified, e.codebase, e.kind, e.file_path)), modules


def _callable_entity(record: CodeRecord) -> Entity:
    """A function's or method's entity (a Method record without its class is a function)."""
    method = record.node_type == "Method" and bool(record.class_name)
    params = [p for p in map(parse_param, record.parameters)
              if p and not (method and p.name in SKIP_PARAMS)]  # a module-level `walk(self)` keeps self
    return Entity(
        "method" if method else "function", record.key, _short_method(record.key) if method else record.name,
        _module_of(record), record.file_path, class_short=_last(record.class_name) if method else "",
        params=params, has_params_fact=bool(record.signature), signature=record.signature,
        return_type=record.return_type, is_async=record.is_async, decorators=list(record.decorators),
        summary=first_sentence(record.docstring) if record.docstring else "",
        calls=[_display(c) for c in record.calls], called_by=[_display(c) for c in record.called_by],
        language=_language(record), codebase=record.codebase)


def _link_subclasses_and_ambiguous_names(entities: list[Entity]) -> None:
    """Each class's subclasses (by short base name), and `ambiguous` on every short name two entities share."""
    classes_by_name: dict[str, list[Entity]] = defaultdict(list)
    by_short: dict[str, list[Entity]] = defaultdict(list)
    for entity in entities:
        by_short[entity.short].append(entity)
        if entity.kind == "class":
            classes_by_name[entity.short].append(entity)
    for entity in entities:
        for base in entity.bases:
            for parent in classes_by_name.get(base, ()):
                parent.subclasses.append(entity.short)
    for group in by_short.values():
        if len(group) > 1:
            for entity in group:
                entity.ambiguous = True


def _module_facts(name: str, files: list[CodeRecord], classes: set[str], functions: set[str]) -> ModuleFacts:
    """One module's facts (`files`: its files by path, files_by_module). A module may span files
    (a Go package): one fact set for all of them,
    imports the union over its files, the summary the first doc comment by file path; one set per
    file taught the same question with different answers."""
    described = next((r.description for r in files if r.description), "")
    return ModuleFacts(name, files[0].file_path, classes=sorted(classes), functions=sorted(functions),
                       imports=sorted({i for r in files for i in r.imports})[:MAX_NAMES],
                       summary=first_sentence(described) if described else "", language=_language(files[0]),
                       codebase=files[0].codebase)


def _constructor(method: str, record: CodeRecord) -> bool:
    """Whether `method` is the constructor of its class (`record`: the method or the class):
    its parameters become the class's; it is no method of its own in answers."""
    language = _language(record)
    if language == "java":
        return method == _last(record.class_name or record.key)
    return method == CONSTRUCTORS.get(language)


def _language(record: CodeRecord) -> str:
    return language_of(record.file_path) or "python"


def _uid(record: CodeRecord, key: str | None = None) -> str:
    """Entities are unique per code base: two code bases may both define `utils.helper`."""
    return f"{getattr(record, 'codebase', '')}\0{key or record.key}"


def _private_owner(entity: Entity) -> bool:
    return entity.kind == "method" and entity.class_short.startswith("_")


def _display(qualified: str) -> str:
    """How a callee/caller is named in answers: `Class.method` for methods, else the last part
    (the graph stores qualified names; `Class.__init__` reads as the class)."""
    parts = qualified.split(".")
    if len(parts) >= 2 and parts[-1] == "__init__":
        return parts[-2]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return ".".join(parts[-2:])
    return parts[-1]
