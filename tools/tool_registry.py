"""Every MCP tool and job kind graphtune serves, each declared in its own module; the one list of them.

A tool module declares its tool next to its function: the hints MCP shows (`@mcp_tool(...)`),
the request model (`@request_tool(Model)`, for job-backed tools) and the job kinds it queues
(`jobs=(JobKind(...),)`: handler, heavy or not, resources). The server walks this registry:
`tools()` for the app and the CLI, `job_kinds()` for the runner and the worker. A new tool adds
its module and one line to TOOL_MODULES (the order of `tools/list`).

What an agent reads in `tools/list` is the first paragraph of the tool function's docstring
(one line: when to use it) and its parameters' `Field(description=...)`: at least three plain words
saying what it does, its unit and its default as applied (tests/integration/mcp/test_lean_surface.py
holds tools/list to 20,000 characters; engine internals stay CLI-only, see JobRequest.cli_only).
Details go in the rest of the docstring, README and docs/tools.md.

Tool modules are imported when the app is built; they import only pydantic and graphtune's
light modules, never torch or the graph drivers, so building the app stays fast. Job handlers
are named as "module:function" strings and imported only inside the worker process, so
registering a training kind never imports torch into the server.

Each job kind says which shared resources a job writes and reads, derived from its params
(`resources(params, settings) -> Resources`): the embedded graph store (`graph:embedded`),
a Neo4j graph (`graph:neo4j`), a dataset (`dataset:<name>`), a model (`model:<name>`). The
job store starts a job only when its resources are free (one writer, or any number of
readers, per resource) -- see JobStore.claim_runnable. A kind that touches nothing shared
keeps the default (no resources).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["TOOL_MODULES", "JobKind", "Resources", "ToolSpec", "dataset_resource", "graph_resource", "job_kinds",
           "mcp_tool", "no_resources", "tools"]

F = TypeVar("F", bound=Callable[..., Any])

# The tool modules under graphtune.tools, in the order tools/list shows them.
TOOL_MODULES = (
    "validate_environment", "get_training_status", "list_jobs", "cancel_job", "ingest_codebase", "graph_diff",
    "extract_training_data", "list_datasets", "preview_dataset", "start_fine_tuning", "resume_fine_tuning",
    "list_models", "evaluate_model", "list_base_models", "ask_model", "compare_models", "promote_model", "retrain",
    "delete_model", "merge_adapter", "export_model",
)


@dataclass(frozen=True)
class Resources:
    """What a job writes and reads while it runs. `creates`: writes that must produce something
    new (a model's output_name, a dataset without overwrite): a second active job creating the
    same name is refused when it is submitted, since only one of them could ever publish."""

    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    creates: tuple[str, ...] = ()


def no_resources(params: dict[str, Any], settings: Any) -> Resources:
    return Resources()


def graph_resource(store: str | None) -> str:
    return f"graph:{store or 'embedded'}"


def dataset_resource(name: str | None) -> tuple[str, ...]:
    """A graphtune dataset by name; a .jsonl path outside datasets/ is nobody's output: no claim."""
    if not name or "/" in name or name.endswith(".jsonl"):
        return ()
    return (f"dataset:{name}",)


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: str  # "package.module:function", called as handler(params, ctx) -> result dict
    heavy: bool  # heavy jobs (GPU training) obey max_concurrent_training_jobs
    description: str
    resources: Callable[[dict[str, Any], Any], Resources] = no_resources  # (params, settings) -> Resources
    # Queued again, once, when its worker is lost (killed, a server restart): for kinds that are safe
    # to redo from the start and cheap beside a user's time (an ingest). Training resumes from a
    # checkpoint instead, when the user asks (resume_fine_tuning).
    restart_when_lost: bool = False

    def load(self) -> Callable[..., dict[str, Any]]:
        module_name, _, attr = self.handler.partition(":")
        return getattr(importlib.import_module(module_name), attr)


@dataclass(frozen=True)
class ToolSpec:
    name: str  # the function's name; MCP serves it under this name
    module: str  # the module that declares it
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool = False  # True when the tool reaches outside the data dir (Neo4j, the hub)
    jobs: tuple[JobKind, ...] = ()  # the job kinds this tool queues (declared here, run by the worker)

    def load(self) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), self.name)


def mcp_tool(*, read_only: bool, destructive: bool, idempotent: bool, open_world: bool = False,
             jobs: tuple[JobKind, ...] = ()) -> Callable[[F], F]:
    """Declare the decorated function an MCP tool, with its hints and the job kinds it queues."""

    def declare(fn: F) -> F:
        fn.tool_spec = ToolSpec(fn.__name__, fn.__module__, read_only=read_only,  # type: ignore[attr-defined]
                                destructive=destructive, idempotent=idempotent, open_world=open_world, jobs=jobs)
        return fn

    return declare


def tools() -> list[ToolSpec]:
    """Every tool, in TOOL_MODULES order (imports the tool modules: light, see the module docstring)."""
    found = []
    for name in TOOL_MODULES:
        fn = getattr(importlib.import_module(f"graphtune.tools.{name}"), name)
        found.append(fn.tool_spec)
    return found


def job_kinds() -> dict[str, JobKind]:
    """Every job kind the tools declare, by name."""
    kinds: dict[str, JobKind] = {}
    for spec in tools():
        for kind in spec.jobs:
            if kind.name in kinds:
                raise ValueError(f"job kind `{kind.name}` is declared twice ({spec.name})")
            kinds[kind.name] = kind
    return kinds
