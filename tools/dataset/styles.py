"""Question style families: how a user really asks, around each templated fact question.

Why: a model taught every fact in one question style answers that style and little else
(measured: 99 % on held-out templates, 3 % on location questions that name the code base,
which it answered with the package itself). Templates vary the words; *families* vary how a
person talks to an assistant: naming the code base ("In the `email` package, ..."), asking
for an answer format (dotted name only, comma-separated names, yes/no), with or without a
system prompt, as a later turn of a conversation, short and casual, or with context given.

Each fact's training questions rotate through the TRAIN_FAMILIES; HELD_OUT_FAMILIES are
never trained on and wrap the held-out probe templates, so the probe report can say how well
knowledge transfers to a way of asking the model never saw (the figure a user feels).
Answers lead with the exact fact; a format request gets exactly the format asked for.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

Message = dict[str, str]

TEMPLATES_FAMILY = "templates"  # probes in plain style, held-out templates only
# the order the j-th phrasing of a fact takes its family in: plain, named and format twice as often
# (plain and named carry the fact in full sentences, format its bare names; the others vary the surface)
ROTATION = ("plain", "named", "format", "system", "casual", "multiturn", "named", "context", "plain", "format")
TRAIN_FAMILIES = tuple(dict.fromkeys(ROTATION))
HELD_OUT_FAMILIES = ("relay", "quiz", "newcomer")

_NAMED = ("In the `{cb}` package, {q}", "In my project, {q}", "In this repo: {q}", "{q} (This is about the `{cb}` code base.)",
          "Question about `{cb}`: {q}", "For the `{cb}` code base: {q}", "In our codebase ({cb}), {q}",
          "I'm working on `{cb}`. {q}")
_SYSTEM = ("You are a helpful assistant.", "You are a coding assistant. Answer precisely and briefly.",
           "You are an expert on the `{cb}` code base.", "You help developers understand their code.")
# a request for brevity keeps the full one-sentence answer: asked "... Be brief." a model trained without
# one answered with the entity's own name (held-out quiz family 61.8 % -> 71.6 % with these two, same-run A/B)
_CASUAL = ("{q}", "hey, {q}", "quick q: {q}", "{q} thx", "so {q}", "{q} keep it short", "short answer pls: {q}")
_CONTEXT_KIND = ("I'm looking at the {kind} `{name}`. {q}", "Context: `{name}` is a {kind} in the `{cb}` code base. {q}",
                 "About the {kind} `{name}`: {q}")
_CONTEXT_CLASS = ("I'm reading the class `{cls}`. {q}", "Context: `{name}` is a method of class `{cls}`. {q}")
# held out: never trained, used only to wrap held-out probe templates
_RELAY = ("My teammate asked me: \"{q}\" What should I tell them?", "A colleague on the `{cb}` project wants to know: {q}",
          "Someone in code review asked: {q} Can you answer that?")
_QUIZ = ("Quiz on the `{cb}` package. {q} Give just the answer.", "Test yourself on `{cb}`: {q}",
         "Exam question ({cb}): {q} Be brief.")
_NEWCOMER = ("Hi! I'm new to the `{cb}` code base and still finding my way around. {q} Thanks a lot!",
             "I just cloned this repo and I'm trying to understand it. {q}",
             "Sorry if this is obvious, I'm new here: {q}")

_FORMAT_MODULE = (("Reply with the {unit}'s full name only.", "module"),
                  ("Answer with the {unit} and the file.", "module_file"),
                  ("Just the {unit} name, please.", "module"))
_FORMAT_NAMES = (("Answer with a comma-separated list of names.", "names"),
                 ("Just the names, please.", "names"),
                 ("Reply with the names only, separated by commas.", "names"))
_FORMAT_TYPE = (("Answer with the type only.", "names"), ("One word or type name, please.", "names"))


@dataclass(slots=True)
class FactQuestion:
    """One templated question about one fact, with everything a family needs to restyle it."""

    question: str
    answer: str  # the full-sentence answer
    fact_type: str
    terse_names: list[str]  # the fact as bare names (a location: [module, file]); [] for prose facts
    codebase: str  # "": never named (a probe whose answer is the code base's own top module)
    unit: str  # "module" or "package"
    kind: str  # function | method | class | module
    name: str  # the entity's short name, no backticks
    class_short: str = ""
    distractor: str = ""  # another module of the code base, for a yes/no location question


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _casual(text: str) -> str:
    """Unquoted, no end punctuation, lowercase start; identifiers keep their case (they are names)."""
    text = text.replace("`", "").rstrip("?.")
    return text[:1].lower() + text[1:]


def _ticks(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _format_variant(fq: FactQuestion, rng: random.Random) -> tuple[str, str] | None:
    """(question with a format instruction, the answer in exactly that format), or None when
    the fact has no terse form (a docstring summary, a `takes no parameters` fact)."""
    if not fq.terse_names:
        return None
    if fq.fact_type == "location":
        module, path = fq.terse_names
        if fq.distractor and rng.random() < 0.3:  # yes/no, right and wrong module equally often
            asked = module if rng.random() < 0.5 else fq.distractor
            q = f"Is `{fq.name}` defined in `{asked}`? Answer yes or no."
            if asked == module:
                return q, f"Yes. `{fq.name}` is defined in `{module}` (file `{path}`)."
            return q, f"No. `{fq.name}` is defined in `{module}` (file `{path}`), not in `{asked}`."
        instruction, shape = _FORMAT_MODULE[rng.randrange(len(_FORMAT_MODULE))]
        return f"{fq.question} {instruction.format(unit=fq.unit)}", f"`{module}`" if shape == "module" else f"`{module}` (`{path}`)"
    table = _FORMAT_TYPE if fq.fact_type == "returns" else _FORMAT_NAMES
    instruction, _ = table[rng.randrange(len(table))]
    return f"{fq.question} {instruction}", _ticks(fq.terse_names)


def render(family: str, fq: FactQuestion, rng: random.Random, earlier: tuple[str, str] | None = None
           ) -> tuple[list[Message], str, str]:
    """(conversation up to the last user turn, the answer, the family actually used).

    A family that cannot apply to this fact (a format request for a prose fact, a second
    turn with no earlier exchange) falls back to `plain` and says so in the returned name."""
    fill = {"cb": fq.codebase, "unit": fq.unit, "kind": fq.kind, "name": fq.name, "cls": fq.class_short}

    def pick(options: tuple[str, ...], q: str) -> str:
        usable = [o for o in options if fq.codebase or "{cb}" not in o] or ["{q}"]
        return usable[rng.randrange(len(usable))].format(q=q, **fill)

    q, answer = fq.question, fq.answer
    if family == "named":
        return [{"role": "user", "content": pick(_NAMED, _lower_first(q))}], answer, family
    if family == "format":
        variant = _format_variant(fq, rng)
        if variant:
            return [{"role": "user", "content": variant[0]}], variant[1], family
    elif family == "system":
        system = pick(_SYSTEM, "")
        return [{"role": "system", "content": system}, {"role": "user", "content": q}], answer, family
    elif family == "multiturn" and earlier:
        return [{"role": "user", "content": earlier[0]}, {"role": "assistant", "content": earlier[1]},
                {"role": "user", "content": q}], answer, family
    elif family == "casual":
        return [{"role": "user", "content": pick(_CASUAL, _casual(q))}], answer, family
    elif family == "context" and fq.kind != "module":
        options = _CONTEXT_CLASS if fq.class_short and fq.fact_type != "location" else _CONTEXT_KIND
        return [{"role": "user", "content": pick(options, q)}], answer, family
    elif family in HELD_OUT_FAMILIES:
        table = {"relay": _RELAY, "quiz": _QUIZ, "newcomer": _NEWCOMER}[family]
        return [{"role": "user", "content": pick(table, q)}], answer, family
    return [{"role": "user", "content": q}], answer, "plain"
