"""Fact-based knowledge datasets: every fact of every entity, in many phrasings, plus probes.

Why this shape (see docs/dataset.md and the literature cited there): a model that sees a fact
in one phrasing memorizes text it cannot answer questions from; paraphrases per atomic fact,
even coverage of every fact, and entity names in several forms make facts extractable. The
eval side therefore holds *phrasings never trained on* (`probes.jsonl` with gold answers),
not held-out files: a knowledge model must be trained on every entity.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from graphtune.tools.dataset.entities import MAX_NAMES, Entity, ModuleFacts, Param
from graphtune.tools.dataset.phrasings import PHRASINGS
from graphtune.tools.dataset.styles import (
    HELD_OUT_FAMILIES,
    ROTATION,
    TEMPLATES_FAMILY,
    FactQuestion,
    Message,
    render,
)
from graphtune.tools.graph.languages import UNIT


@dataclass(slots=True)
class Fact:
    fact_type: str
    answers: list[str]  # the same fact in several answer phrasings (rotated across questions)
    gold: dict[str, Any] | None = None  # what a probe answer must contain; None: trained, not probed
    terse: list[str] = field(default_factory=list)  # the fact as bare names, for format requests; [] for prose


def _tick(name: str) -> str:
    return f"`{name}`"


def join_names(names: list[str], limit: int = MAX_NAMES) -> str:
    shown = [_tick(n) for n in names[:limit]]
    more = len(names) - limit
    if more > 0:
        shown.append(f"{more} more")
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _ref(entity: Entity) -> str:
    return _tick(entity.qualified if entity.ambiguous else entity.short)


def name_styles(entity: Entity) -> list[str]:
    """How questions name the entity: short, qualified, and short-with-module (short forms
    only when unique in the code base, so every question has one right answer)."""
    styles = [_tick(entity.qualified)]
    if not entity.ambiguous:
        styles.insert(0, _tick(entity.short))
        styles.append(f"{_tick(entity.short)} from {_tick(entity.module)}")
    return styles


def _param_list(params: list[Param]) -> str:
    return join_names([p.display for p in params])


def entity_facts(e: Entity) -> list[Fact]:
    ref, kind, facts = _ref(e), e.kind, []
    where = f"the {UNIT[e.language]} {_tick(e.module)} (file {_tick(e.file_path)})"
    if kind == "method":
        owner = f"a method of class {_tick(e.class_short)}"
        location = [f"{ref} is {owner}, defined in {where}.",
                    f"{ref} lives in {_tick(e.module)}, in the file {_tick(e.file_path)}, as {owner}.",
                    f"The method {ref} belongs to class {_tick(e.class_short)} in {_tick(e.module)} "
                    f"({_tick(e.file_path)})."]
    else:
        location = [f"{ref} is defined in {where}.",
                    f"{ref} lives in {_tick(e.module)}, in the file {_tick(e.file_path)}.",
                    f"The {kind} {ref} is in {_tick(e.module)} ({_tick(e.file_path)})."]
    facts.append(Fact("location", location, {"kind": "module", "module": e.module, "file": e.file_path},
                      [e.module, e.file_path]))
    if e.has_params_fact:
        facts.append(_params_fact(e, ref))
    if e.return_type:
        facts.append(Fact("returns", [f"{ref} returns {_tick(e.return_type)}.",
                                      f"The return type of {ref} is {_tick(e.return_type)}."],
                          {"kind": "names", "names": [e.return_type], "required": 1}, [e.return_type]))
    if kind == "class":
        if e.bases:
            blist = join_names(e.bases)
            facts.append(Fact("bases", [f"{ref} inherits from {blist}.", f"The base classes of {ref}: {blist}.",
                                        f"{ref} is a subclass of {blist}."],
                              {"kind": "names", "names": e.bases, "required": len(e.bases)}, e.bases))
        elif e.language == "python":
            facts.append(Fact("bases", [f"{ref} has no base class other than `object`.",
                                        f"{ref} inherits directly from `object`."]))
        else:
            facts.append(Fact("bases", [f"{ref} extends or implements no other type.",
                                        f"{ref} has no base type."]))
        if e.subclasses:
            slist = join_names(e.subclasses)
            facts.append(Fact("subclasses", [f"These classes inherit from {ref}: {slist}.",
                                             f"{ref} is subclassed by {slist}."],
                              {"kind": "names", "names": e.subclasses, "required": min(2, len(e.subclasses))},
                              e.subclasses))
        if e.methods:
            mlist, n = join_names(e.methods), len(e.methods)
            facts.append(Fact("methods", [f"{ref} defines {_plural(n, 'method')}: {mlist}.",
                                          f"The methods of {ref} are {mlist}.",
                                          f"On {ref} you can call {mlist}."],
                              {"kind": "names", "names": e.methods, "required": min(2, n)}, e.methods))
    if e.calls:
        clist = join_names(e.calls)
        facts.append(Fact("calls", [f"{ref} calls {clist}.", f"Inside {ref}, these are called: {clist}."],
                          {"kind": "names", "names": e.calls, "required": min(2, len(e.calls))}, e.calls))
    if e.called_by:
        clist = join_names(e.called_by)
        facts.append(Fact("callers", [f"{ref} is called by {clist}.", f"These call {ref}: {clist}."],
                          {"kind": "names", "names": e.called_by, "required": min(2, len(e.called_by))},
                          e.called_by))
    if e.summary:
        facts.append(Fact("summary", [f"{ref}: {e.summary}", f"According to its docstring, {ref} does this: "
                                                              f"{e.summary}"]))
    return facts


def _params_fact(e: Entity, ref: str) -> Fact:
    subject = f"The constructor of {ref}" if e.kind == "class" else ref
    if not e.params:
        answers = [f"{subject} takes no parameters.", f"{subject} accepts no arguments."]
        return Fact("parameters", answers)
    plist, n = _param_list(e.params), len(e.params)
    answers = [f"{subject} takes {_plural(n, 'parameter')}: {plist}.",
               f"The parameters of {ref} are {plist}.",
               f"{subject} accepts {plist}."]
    if e.signature:
        answers[1] += f" Its signature is {_tick(e.signature)}."
    names = [p.name for p in e.params]
    return Fact("parameters", answers, {"kind": "names", "names": names, "required": _required_params(len(names))},
                names)


def _required_params(n: int) -> int:
    """A parameters answer counts as right when it names them all (up to 4), or 3/4 of longer lists."""
    return n if n <= 4 else -(-3 * n // 4)


def module_facts(m: ModuleFacts) -> list[Fact]:
    ref, facts, unit = _tick(m.module), [], UNIT[m.language]
    parts = []
    if m.classes:
        parts.append(f"the {'class' if len(m.classes) == 1 else 'classes'} {join_names(m.classes)}")
    if m.functions:
        parts.append(f"the {'function' if len(m.functions) == 1 else 'functions'} {join_names(m.functions)}")
    if parts:
        body = " and ".join(parts)
        names = m.classes + m.functions
        facts.append(Fact("module_members", [f"The {unit} {ref} defines {body}.", f"{ref} contains {body}."],
                          {"kind": "names", "names": names, "required": min(2, len(names))}, names))
    if m.imports:
        ilist = join_names(m.imports)
        facts.append(Fact("module_imports", [f"{ref} imports {ilist}.", f"The {unit} {ref} depends on {ilist}."],
                          {"kind": "names", "names": m.imports, "required": min(2, len(m.imports))}, m.imports))
    return facts


def profile_sentences(e: Entity, facts: list[Fact]) -> list[str]:
    async_ = "async " if e.is_async else ""
    head = {"class": "a class", "function": f"an {async_}function" if async_ else "a function",
            "method": f"an {async_}method" if async_ else "a method"}[e.kind]
    return [f"{_ref(e)} is {head}."] + [f.answers[0] for f in facts]


def _probe_styles(fact_type: str, styles: list[str], entity: Entity | None) -> list[str]:
    """Names a probe may use: a location question must not contain its answer, so it names
    the entity by its short name only (no probe when the short name is ambiguous)."""
    if fact_type != "location":
        return styles
    return [] if entity is None or entity.ambiguous else [_tick(entity.short)]


def _offset(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\0".join(parts).encode(), digest_size=4).digest(), "big")


def _in_words_of(question: str, unit: str) -> str:
    """Questions say "package" for Go and Java (the templates say "module")."""
    return question if unit == "module" else question.replace("module", unit)


@dataclass
class KnowledgeBuild:
    train: list[tuple[list[Message], str, dict[str, Any]]]  # (conversation before the answer, answer, meta)
    probes: list[dict[str, Any]]
    facts_per_type: Counter[str]
    phrasings_per_type: Counter[str]
    entities_by_kind: Counter[str]


def codebase_label(codebase: str, module: str) -> str:
    """The name a user calls the code base by: as ingested, else the module's top-level package."""
    return codebase or module.split("/")[-1].split(".")[0]


@dataclass(slots=True)
class _Item:
    key: str
    kind: str
    styles: list[str]
    facts: list[Fact]
    entity: Entity | None
    unit: str
    codebase: str
    module: str


def _fact_question(item: _Item, fact: Fact, question: str, answer: str, distractor: str) -> FactQuestion:
    e = item.entity
    name = (e.qualified if e.ambiguous else e.short) if e else item.key
    return FactQuestion(question, answer, fact.fact_type, fact.terse, item.codebase, item.unit, item.kind, name,
                        e.class_short if e else "", distractor if fact.fact_type == "location" else "")


def _items(entities: list[Entity], modules: list[ModuleFacts]) -> list[_Item]:
    """What facts are asked about: every entity, then every module."""
    items: list[_Item] = []
    for e in entities:
        items.append(_Item(e.qualified, e.kind, name_styles(e), entity_facts(e), e, UNIT[e.language],
                           codebase_label(e.codebase, e.module), e.module))
    for m in modules:
        items.append(_Item(m.module, "module", [_tick(m.module)], module_facts(m), None, UNIT[m.language],
                           codebase_label(m.codebase, m.module), m.module))
    return items


def _add_probes(probes: list[dict[str, Any]], item: _Item, fact: Fact, templates: Any, styles: list[str],
                start: int, rng: random.Random) -> None:
    """A fact's two probes: a held-out template in plain style, and one inside a held-out style family."""
    for n, family in enumerate((TEMPLATES_FAMILY, HELD_OUT_FAMILIES[start % len(HELD_OUT_FAMILIES)])):
        template = templates[(start + n) % len(templates)]
        name = styles[(start // 5 + n) % len(styles)]
        question = _in_words_of(template.format(name=name, kind=item.kind), item.unit)
        if family != TEMPLATES_FAMILY:
            fq = _fact_question(item, fact, question, fact.answers[0], "")
            if fact.fact_type == "location" and fq.codebase == item.module:
                fq.codebase = ""  # naming the code base would name the answer
            messages, _, _ = render(family, fq, rng)
            question = messages[-1]["content"]
        probes.append({"id": f"p{len(probes):05d}", "fact_type": fact.fact_type, "entity": item.key,
                       "kind": item.kind, "family": family, "template": template, "question": question,
                       "reference": fact.answers[0], "gold": fact.gold})


def _add_profiles(train: list[tuple[list[Message], str, dict[str, Any]]], item: _Item, entity: Entity, seed: int,
                  count: int) -> int:
    """`count` profile examples of an entity (all its facts as one answer, shuffled); returns `count`."""
    sentences = profile_sentences(entity, item.facts)
    rng = random.Random(_offset(str(seed), item.key, "profile"))
    templates = PHRASINGS["profile"].train
    for j in range(count):
        body = sentences[:1] + rng.sample(sentences[1:], len(sentences) - 1)
        question = templates[(rng.randrange(len(templates)) + j) % len(templates)].format(
            name=item.styles[j % len(item.styles)], kind=item.kind)
        train.append(([{"role": "user", "content": question}], " ".join(body),
                      {"task": "profile", "entity": item.key, "kind": item.kind, "family": "plain"}))
    return count


def build(entities: list[Entity], modules: list[ModuleFacts], *, phrasings_per_fact: int, profiles_per_entity: int,
          seed: int) -> KnowledgeBuild:
    """Training pairs (`phrasings_per_fact` questions per fact, rotating templates, entity names,
    answer wordings and question style families) and, per probe-able fact, two probes: a held-out
    template in plain style, and a held-out template inside a held-out style family."""
    train: list[tuple[list[Message], str, dict[str, Any]]] = []
    probes: list[dict[str, Any]] = []
    facts_per_type: Counter[str] = Counter()
    phrasings_per_type: Counter[str] = Counter()
    items = _items(entities, modules)
    module_names = sorted({item.module for item in items})
    earlier: tuple[str, str] | None = None  # the exchange a second-turn question follows: another entity's
    for item in items:
        latest = earlier
        key, kind, styles, entity, unit = item.key, item.kind, item.styles, item.entity, item.unit
        for fact in item.facts:
            facts_per_type[fact.fact_type] += 1
            templates = PHRASINGS[fact.fact_type]
            start = _offset(str(seed), key, fact.fact_type)
            rng = random.Random(start)
            distractor = module_names[start % len(module_names)] if len(module_names) > 1 else ""
            if distractor == item.module:
                distractor = module_names[(start + 1) % len(module_names)]
            seen: set[str] = set()
            rendered: set[str] = set()
            for j in range(phrasings_per_fact * 2):
                if len(seen) >= phrasings_per_fact:
                    break
                template = templates.train[(start + j) % len(templates.train)]
                name = styles[(start // 7 + j) % len(styles)]
                question = _in_words_of(template.format(name=name, kind=kind), unit)
                if question in seen:
                    continue
                seen.add(question)
                answer = fact.answers[(start // 3 + j) % len(fact.answers)]
                family = ROTATION[(start // 11 + len(seen)) % len(ROTATION)]
                fq = _fact_question(item, fact, question, answer, distractor)
                messages, answer, used = render(family, fq, rng, earlier)
                if messages[-1]["content"] in rendered:  # a yes/no question reads the same for every template
                    messages, answer, used = render("plain", fq, rng)
                rendered.add(messages[-1]["content"])
                train.append((messages, answer, {"task": fact.fact_type, "entity": key, "kind": kind,
                                                 "family": used}))
                phrasings_per_type[fact.fact_type] += 1
                if used == "plain":
                    latest = (question, answer)
            probe_styles = _probe_styles(fact.fact_type, styles, entity)
            if fact.gold is not None and templates.probe and probe_styles:
                _add_probes(probes, item, fact, templates.probe, probe_styles, start, rng)
        earlier = latest
        if entity is not None and profiles_per_entity:
            phrasings_per_type["profile"] += _add_profiles(train, item, entity, seed, profiles_per_entity)
    entities_by_kind = Counter(item.kind for item in items)
    return KnowledgeBuild(train, probes, facts_per_type, phrasings_per_type, entities_by_kind)
