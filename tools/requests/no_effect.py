"""Refuse a parameter that would do nothing in the chosen mode, instead of silently ignoring it.

An agent that passes `node_types` with `objective="knowledge"` believes it narrowed the dataset;
nothing said otherwise (issue 22). Each request model lists, for the mode it is in, the fields
that have no effect and why; a field counts as given when its value differs from its default
(an explicit default changes nothing, so it is accepted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphtune.tools.errors import ParameterWithoutEffect
from pydantic import BaseModel

__all__ = ["NoEffect", "given", "refuse_without_effect"]


@dataclass(frozen=True)
class NoEffect:
    """`field` does nothing because `why`; `fix` says what to do instead."""

    field: str
    why: str
    fix: str


def given(model: type[BaseModel], data: dict[str, Any], name: str) -> bool:
    """True when `data` sets `name` to something other than its default (None and [] count as unset)."""
    value = data.get(name)
    if value is None or value == []:
        return False
    field = model.model_fields.get(name)
    return field is None or value != field.default


def refuse_without_effect(model: type[BaseModel], data: dict[str, Any], rules: list[NoEffect]) -> None:
    """Raise ParameterWithoutEffect for the first rule whose field is given."""
    for rule in rules:
        if given(model, data, rule.field):
            raise ParameterWithoutEffect(f"`{rule.field}`={data[rule.field]!r} has no effect: {rule.why}.",
                                         field=rule.field, hint=rule.fix)
