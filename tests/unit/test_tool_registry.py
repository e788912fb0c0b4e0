"""One registry: every tool module declares its tool (and the job kinds it queues) next to its
function, and TOOL_MODULES is the one list the server walks."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

from graphtune.tools.requests import JobRequest, ToolRequest
from graphtune.tools.tool_registry import TOOL_MODULES, job_kinds, tools

TOOLS_DIR = Path(__file__).resolve().parents[2] / "tools"


def test_every_listed_module_declares_its_tool() -> None:
    specs = tools()
    assert [s.name for s in specs] == list(TOOL_MODULES)
    assert all(s.module == f"graphtune.tools.{s.name}" and s.load().tool_spec is s for s in specs)


def test_every_declared_tool_is_listed() -> None:
    declared = {path.stem for path in TOOLS_DIR.glob("*.py")
                if re.search(r"^@mcp_tool\(", path.read_text(encoding="utf-8"), re.MULTILINE)}
    assert declared == set(TOOL_MODULES)


def test_every_request_kind_is_declared_by_the_tool_that_takes_the_request() -> None:
    kinds = {kind.name: spec for spec in tools() for kind in spec.jobs}
    for spec in tools():
        model = getattr(spec.load(), "request_model", None)
        if model is None:
            continue
        assert issubclass(model, ToolRequest)
        if issubclass(model, JobRequest):
            assert model.kind in kinds, f"{spec.name} queues `{model.kind}`, which no tool declares"
        else:  # a chain of jobs (retrain): no kind of its own; it declares the kinds only it queues
            assert spec.name == "retrain" and spec.jobs, spec.name


def test_every_handler_names_a_function_that_exists() -> None:
    """Checked from the source: importing the handlers would import torch."""
    for kind in job_kinds().values():
        module, _, function = kind.handler.partition(":")
        origin = importlib.util.find_spec(module).origin
        tree = ast.parse(Path(origin).read_text(encoding="utf-8"))
        assert function in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, kind.handler


def test_the_job_kinds_are_the_nine_the_tools_queue() -> None:
    assert sorted(job_kinds()) == ["ask", "compare", "evaluate", "export", "extract", "ingest", "merge", "promote",
                                   "train"]


def test_list_jobs_filters_by_every_job_kind() -> None:
    """list_jobs' `kind` choices are written out for its schema: they must follow the registry (export was missing)."""
    import typing

    from graphtune.tools.list_jobs import list_jobs

    hint = typing.get_type_hints(list_jobs, include_extras=True)["kind"]
    literal = next(a for a in typing.get_args(typing.get_args(hint)[0]) if typing.get_origin(a) is typing.Literal)
    assert sorted(typing.get_args(literal)) == sorted(job_kinds())
