"""Every MCP tool graphtune serves, with its annotations, in one list.

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
    title: str
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool = False  # True when the tool reaches outside the data dir (Neo4j, the hub)

    def load(self) -> Callable[..., Any]:
        return getattr(importlib.import_module(f"graphtune.tools.{self.name}"), self.name)


TOOLS: list[ToolSpec] = [
    ToolSpec("validate_environment", "Validate environment", read_only=True, destructive=False, idempotent=True,
             open_world=True),
    ToolSpec("get_training_status", "Get job status", read_only=True, destructive=False, idempotent=True),
    ToolSpec("list_jobs", "List jobs", read_only=True, destructive=False, idempotent=True),
    ToolSpec("cancel_job", "Cancel a job", read_only=False, destructive=True, idempotent=True),
    ToolSpec("ingest_codebase", "Ingest a Python code base", read_only=False, destructive=False, idempotent=True,
             open_world=True),
    ToolSpec("graph_diff", "Diff a code base's graph versions", read_only=True, destructive=False, idempotent=True),
    ToolSpec("extract_training_data", "Extract a training dataset", read_only=False, destructive=False,
             idempotent=False, open_world=True),
    ToolSpec("list_datasets", "List datasets", read_only=True, destructive=False, idempotent=True),
    ToolSpec("preview_dataset", "Preview a dataset", read_only=True, destructive=False, idempotent=True),
    ToolSpec("start_fine_tuning", "Start fine-tuning", read_only=False, destructive=False, idempotent=False,
             open_world=True),
    ToolSpec("resume_fine_tuning", "Resume fine-tuning", read_only=False, destructive=False, idempotent=False),
    ToolSpec("list_models", "List models", read_only=True, destructive=False, idempotent=True),
    ToolSpec("evaluate_model", "Evaluate a model closed-book", read_only=False, destructive=False, idempotent=True),
    ToolSpec("list_base_models", "List base models", read_only=True, destructive=False, idempotent=True),
    ToolSpec("ask_model", "Ask a model a question", read_only=False, destructive=False, idempotent=False,
             open_world=True),
    ToolSpec("compare_models", "Compare two models on the same probes", read_only=False, destructive=False,
             idempotent=True),
    ToolSpec("promote_model", "Point an alias at a model", read_only=False, destructive=False, idempotent=True),
    ToolSpec("delete_model", "Delete a model", read_only=False, destructive=True, idempotent=False),
    ToolSpec("merge_adapter", "Merge an adapter into its base model", read_only=False, destructive=False,
             idempotent=False),
]


def register_resources(app: "MCPServer", services: "Services") -> None:
    """Attach the datasets/models resources (see graphtune.tools.resources)."""
    from graphtune.tools.resources import register

    register(app, services)
