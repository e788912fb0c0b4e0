"""Find the Python files of a code base (a folder or an installed package) without importing it."""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from graphtune.tools.errors import ConfigError

SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".venv", "venv", "node_modules", ".tox", ".mypy_cache",
             ".pytest_cache", "site-packages", "build", "dist"}


@dataclass(frozen=True)
class SourceFile:
    abs_path: str
    rel_path: str  # key in the graph, e.g. "json/decoder.py"
    module_name: str  # e.g. "json.decoder"
    is_package: bool  # an __init__.py
    size: int


def resolve_root(path: str | None, package: str | None) -> Path:
    """The folder (or single file) to ingest, from exactly one of `path` / `package`."""
    if bool(path) == bool(package):
        raise ConfigError("give exactly one of `path` (a folder) or `package` (an installed package name).",
                          field="path", hint="e.g. path='/src/myproject' or package='json'.")
    if package:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError) as exc:
            spec, error = None, exc
        else:
            error = None
        if spec is None:
            raise ConfigError(f"`package`={package!r} is not installed in graphtune's Python ({error or 'not found'}).",
                              field="package", hint="Install it, or pass `path` to its source folder.")
        if spec.submodule_search_locations:
            return Path(list(spec.submodule_search_locations)[0]).resolve()
        if spec.origin and spec.origin.endswith(".py"):
            return Path(spec.origin).resolve()
        raise ConfigError(f"`package`={package!r} has no Python source (it is built-in or compiled).",
                          field="package", hint="Pick a package that ships .py files.")
    root = Path(path).expanduser()  # type: ignore[arg-type]
    if not root.exists():
        raise ConfigError(f"`path`={path!r} does not exist.", field="path", hint="Pass an existing folder.")
    return root.resolve()


def discover(root: Path, exclude: list[str]) -> list[SourceFile]:
    """All .py files under root, sorted; symlinked folders are not followed (no loops)."""
    if root.is_file():
        if root.suffix != ".py":
            return []
        return [SourceFile(str(root), root.name, root.stem, False, root.stat().st_size)]
    base = root.parent if (root / "__init__.py").exists() else root
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, base).replace(os.sep, "/")
            if any(fnmatch.fnmatch(rel, pattern) for pattern in exclude) or not os.path.isfile(full):
                continue
            found.append(SourceFile(full, rel, _module_name(rel), name == "__init__.py", os.path.getsize(full)))
    return found


def has_python_files(root: Path) -> bool:
    """Whether discover() can find anything under root (stops at the first .py file; cheap)."""
    if root.is_file():
        return root.suffix == ".py"
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        if any(name.endswith(".py") for name in filenames):
            return True
    return False


def no_python_error(root: Path, field: str, excluded: bool = False) -> ConfigError:
    what = "is not a Python file" if root.is_file() else "holds no .py files" + (
        " (after `exclude`)" if excluded else "")
    return ConfigError(f"`{field}` {root} {what}; nothing was ingested and the graph is unchanged.", field=field,
                       hint="Point `path` at a folder of Python sources or a .py file (or `package` at an "
                       "installed package with .py sources); check `exclude`.")


def default_codebase(root: Path, package: str | None = None) -> str:
    """The code base name users expect when they give none: the package's import name, else the
    folder's name (a package folder's name is its import name, e.g. `json`), or a single file's
    stem (`tool.py` -> `tool`). Characters outside [A-Za-z0-9_.-] become '-'."""
    raw = package or (root.stem if root.is_file() else root.name)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-._")[:64]
    return name or "codebase"


def _module_name(rel: str) -> str:
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "__init__"


def check_root(path: str | None, package: str | None, codebase: str | None = None) -> tuple[Path, str]:
    """The root to ingest and its code base name; a coded error (graph untouched) for a path
    that does not exist or holds no Python file."""
    root = resolve_root(path, package)
    if not has_python_files(root):
        raise no_python_error(root, "path" if path else "package")
    return root, codebase or default_codebase(root, package)
