"""Every MCP tool graphtune serves, with its annotations, in one list.

What an agent reads in `tools/list` is the first paragraph of the tool function's docstring
(one line: when to use it) and its parameters' `Field(description=...)`: at least three plain words
saying what it does, its unit and its default as applied (tests/integration/mcp/test_lean_surface.py
holds tools/list to 20,000 characters; engine internals stay CLI-only, see JobRequest.cli_only).
Details go in the rest of the docstring, README and docs/tools.md.

Tool modules are imported when the app is built; they import only pydantic and graphtune's
light modules, never torch or the graph drivers, so building the app stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphtune.server.services import Services
    from mcp.server.mcpserver import MCPServer


@dataclass(frozen=True)
class ToolSpec:
    name: str  # also the module name under graphtune.tools and the function name in it
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool = False  # True when the tool reaches outside the data dir (Neo4j, the hub)

    def load(self) -> Callable[..., Any]:
        return getattr(importlib.import_module(f"graphtune.tools.{self.name}"), self.name)


TOOLS: list[ToolSpec] = [
    ToolSpec("validate_environment", read_only=True, destructive=False, idempotent=True,
             open_world=True),
    ToolSpec("get_training_status", read_only=True, destructive=False, idempotent=True),
    ToolSpec("list_jobs", read_only=True, destructive=False, idempotent=True),
    ToolSpec("cancel_job", read_only=False, destructive=True, idempotent=True),
    ToolSpec("ingest_codebase", read_only=False, destructive=False, idempotent=True,
             open_world=True),
    ToolSpec("graph_diff", read_only=True, destructive=False, idempotent=True),
    ToolSpec("extract_training_data", read_only=False, destructive=False,
             idempotent=False, open_world=True),
    ToolSpec("list_datasets", read_only=True, destructive=False, idempotent=True),
    ToolSpec("preview_dataset", read_only=True, destructive=False, idempotent=True),
    ToolSpec("start_fine_tuning", read_only=False, destructive=False, idempotent=False,
             open_world=True),
    ToolSpec("resume_fine_tuning", read_only=False, destructive=False, idempotent=False),
    ToolSpec("list_models", read_only=True, destructive=False, idempotent=True),
    ToolSpec("evaluate_model", read_only=False, destructive=False, idempotent=True),
    ToolSpec("list_base_models", read_only=True, destructive=False, idempotent=True),
    ToolSpec("ask_model", read_only=False, destructive=False, idempotent=False,
             open_world=True),
    ToolSpec("compare_models", read_only=False, destructive=False,
             idempotent=True),
    ToolSpec("promote_model", read_only=False, destructive=False, idempotent=True),
    ToolSpec("retrain", read_only=False, destructive=False, idempotent=False, open_world=True),
    ToolSpec("delete_model", read_only=False, destructive=True, idempotent=False),
    ToolSpec("merge_adapter", read_only=False, destructive=False,
             idempotent=False),
    ToolSpec("export_model", read_only=False, destructive=False, idempotent=True),
]


def register_resources(app: "MCPServer", services: "Services") -> None:
    """Attach the datasets/models resources (see graphtune.tools.resources)."""
    from graphtune.tools.resources import register

    register(app, services)
