"""Imports flow one way, down the layers, and never in a circle (function-level imports count too;
type-only imports under `if TYPE_CHECKING:` are allowed: they never execute).

The layers, lowest first (a module may import its own layer and the ones below it):

    base      tools/{errors,declare,job_context,services,...}.py  shared helpers, no engine
    graph     tools/graph/      parsing, the graph stores, records (CodeRecord), graph versions
    dataset   tools/dataset/    datasets built from graph records
    training  tools/training/   LoRA jobs, models, evaluation (reads datasets)
    requests  tools/requests/   the MCP/CLI surface of each job: request model -> engine config
    tools     tools/*.py        the MCP tool modules (and helpers that call several engines)
    server    server/           the app, the CLI, the job store and runner

Engines (graph, dataset, training) take engine configs declared in their own layer; the
request layer derives its models from them, so no setting is declared twice."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
PACKAGES = {"graphtune.server": ROOT / "server", "graphtune.tools": TOOLS}


def _runtime_imports(tree: ast.AST, with_names: bool = False) -> list[Any]:
    """(line, module) of every import that executes (with the imported names when `with_names`)."""
    found: list[Any] = []

    def visit(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        if not type_only and isinstance(node, ast.ImportFrom) and node.module:
            names = [alias.name for alias in node.names]
            found.append((node.lineno, node.module, names) if with_names else (node.lineno, node.module))
        if not type_only and isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) if with_names else (node.lineno, alias.name)
                         for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(tree, False)
    return found


def test_tools_never_import_the_server_at_run_time() -> None:
    offenders = []
    for path in sorted(TOOLS.rglob("*.py")):
        for line, module in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if module == "graphtune.server" or module.startswith("graphtune.server."):
                offenders.append(f"{path.relative_to(TOOLS.parent)}:{line} imports {module}")
    assert not offenders, "upward imports (tools -> server):\n" + "\n".join(offenders)


LAYERS = ("base", "graph", "dataset", "training", "requests", "tools", "server")
ENGINE_PACKAGES = ("graph", "dataset", "training", "requests")
# top-level modules of tools/ that import no engine: any layer may use them. A new module there is
# counted in the `tools` layer until it is listed here.
BASE = frozenset({"checks", "declare", "errors", "job_context", "jobs", "paging", "resource_errors", "services",
                  "timestamps", "validation", "version"})


def layer_of(module: str) -> str:
    """The layer of a graphtune module by its import name (see the module docstring)."""
    parts = module.split(".")
    if parts[1] == "server":
        return "server"
    if len(parts) == 2 or parts[2] in BASE:
        return "base"
    return parts[2] if parts[2] in ENGINE_PACKAGES else "tools"


def _upward(graph: dict[str, set[str]]) -> list[str]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    return sorted(f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
                  for module, targets in graph.items() for target in targets
                  if rank[layer_of(target)] > rank[layer_of(module)])


def test_every_import_points_down_the_layers() -> None:
    offenders = _upward(_import_graph())
    assert not offenders, "upward imports (see the layers in this module's docstring):\n" + "\n".join(offenders)


def test_the_layer_check_finds_an_upward_import() -> None:
    graph = {"graphtune.tools.graph.sources": {"graphtune.tools.dataset.catalog", "graphtune.tools.errors"},
             "graphtune.tools.dataset.extract": {"graphtune.tools.requests.extract", "graphtune.tools.graph.sources"},
             "graphtune.tools.training.submit": {"graphtune.server.app"},
             "graphtune.tools.errors": {"graphtune.tools.list_jobs"},
             "graphtune.server.app": {"graphtune.tools.start_fine_tuning"}}
    assert [line.split(" ")[0] for line in _upward(graph)] == [
        "graphtune.tools.dataset.extract", "graphtune.tools.errors", "graphtune.tools.graph.sources",
        "graphtune.tools.training.submit"]


def test_every_module_has_a_layer() -> None:
    assert {layer_of(m) for m in _modules(PACKAGES)} == set(LAYERS)


def _modules(packages: dict[str, Path]) -> dict[str, Path]:
    """Every graphtune module by import name (a package by its __init__)."""
    found = {}
    for package, folder in packages.items():
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def _import_graph(packages: dict[str, Path] = PACKAGES) -> dict[str, set[str]]:
    """module -> graphtune modules it imports at run time (`from a import b` counts a.b when that is a module)."""
    modules = _modules(packages)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for _, module, names in _runtime_imports(ast.parse(path.read_text(encoding="utf-8")), with_names=True):
            targets.add(module)
            targets.update(f"{module}.{n}" for n in names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_among_graphtune_modules() -> None:
    cycles = _cycles(_import_graph())
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_tools_take_typed_services_and_the_server_provides_them(services) -> None:
    """Across the server/tools line services are typed by protocols (graphtune.tools.services), not `Any`."""
    import typing

    from graphtune.tools.services import JobStoreView, JobSubmitter, ToolServices, ToolSettings
    from graphtune.tools.tool_registry import tools

    for spec in tools():
        assert typing.get_type_hints(spec.load())["services"] is ToolServices, spec.name
    assert isinstance(services, ToolServices) and isinstance(services.settings, ToolSettings)
    assert isinstance(services.store, JobStoreView) and isinstance(services.runner, JobSubmitter)
