"""How a user's graph names things: labels, property names and relationship types.

The default is graphtune's own schema (docs/graph.md). Every identifier is validated
against a strict pattern before it is placed (backtick-quoted) in a query; values always
travel as query parameters, never in the query text.
"""

from __future__ import annotations

import re

from graphtune.tools.errors import ConfigError
from pydantic import BaseModel, Field, field_validator

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

DEFAULT_PROPERTIES = {
    "key": "qualified_name", "name": "name", "file_path": "file_path", "docstring": "docstring",
    "signature": "signature", "parameters": "parameters", "return_type": "return_type", "source": "source",
    "base_classes": "base_classes", "decorators": "decorators", "is_async": "is_async",
    "path": "path", "module_name": "module_name", "description": "description", "category": "category",
    "example": "example", "best_practices": "best_practices", "codebase": "codebase",
}


def ident(value: str, field: str) -> str:
    """Backtick-quoted identifier, or a ConfigError naming the mapping field."""
    if not IDENTIFIER.fullmatch(value):
        raise ConfigError(f"`{field}`={value!r} is not a valid label/property/relationship name.",
                          field=field, hint="Use letters, digits and underscores only (max 64 chars).")
    return f"`{value}`"


class GraphMapping(BaseModel):
    """Names in the source graph for graphtune's concepts (defaults: graphtune's schema)."""

    labels: dict[str, str] = Field(default_factory=lambda: {
        "Method": "Method", "Class": "Class", "Function": "Function", "Pattern": "Pattern", "CodeFile": "CodeFile"})
    properties: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PROPERTIES))
    relationships: dict[str, str] = Field(default_factory=lambda: {
        "HAS_METHOD": "HAS_METHOD", "DEFINES": "DEFINES", "CALLS": "CALLS", "INHERITS": "INHERITS",
        "IMPORTS": "IMPORTS", "IMPLEMENTS_PATTERN": "IMPLEMENTS_PATTERN"})

    @field_validator("labels", "properties", "relationships")
    @classmethod
    def _valid_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, name in value.items():
            ident(name, f"mapping.{key}")
        return value

    def label(self, node_type: str) -> str:
        return ident(self.labels.get(node_type, node_type), f"mapping.labels.{node_type}")

    def prop(self, name: str) -> str:
        return ident(self.properties.get(name, DEFAULT_PROPERTIES.get(name, name)), f"mapping.properties.{name}")

    def rel(self, name: str) -> str:
        return ident(self.relationships.get(name, name), f"mapping.relationships.{name}")
