"""Find the source files of a code base (a folder or an installed package) without importing it.

Languages are told apart by extension (languages.py); vendored and generated folders
(node_modules, vendor, target, dist, build, ...) are skipped. Each file gets the module name
its language's imports use: dotted paths for Python and TypeScript/JavaScript, the import path
(go.mod `module` + folder) for Go, the folder for Java (the parser takes the `package`), the
crate path (`crate.a.b`) for Rust."""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from graphtune.tools.errors import ConfigError, os_reason, shown
from graphtune.tools.graph.languages import BY_NAME, DISPLAY, LANGUAGES, language_of

SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".venv", "venv", "node_modules", ".tox", ".mypy_cache",
             ".pytest_cache", "site-packages", "build", "dist", "vendor", "target", "bower_components"}


@dataclass(frozen=True)
class SourceFile:
    abs_path: str
    rel_path: str  # key in the graph, e.g. "json/decoder.py"
    module_name: str  # e.g. "json.decoder"
    is_package: bool  # an __init__.py
    size: int
    language: str = "python"


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
    try:
        root = Path(path).expanduser()  # type: ignore[arg-type]
        if not root.exists():
            where = "" if root.is_absolute() else f" (a relative path is read from the server's working folder, {Path.cwd()})"
            raise ConfigError(f"`path`={shown(path)} does not exist{where}.", field="path",
                              hint="Pass the absolute path of an existing folder or source file.")
        return root.resolve()
    except (OSError, RuntimeError) as exc:  # a path too long for the file system, an unknown ~user
        raise ConfigError(f"`path`={shown(path)} cannot be used ({os_reason(exc)}).", field="path",
                          hint="Pass the absolute path of an existing folder or source file.") from exc


def _wanted(languages: list[str] | None) -> set[str]:
    return set(languages) if languages else set(LANGUAGES)


def discover(root: Path, exclude: list[str], languages: list[str] | None = None,
             unreadable: list[tuple[str, str]] | None = None) -> list[SourceFile]:
    """All source files of the `languages` (None: all) under root, sorted; symlinked folders are
    not followed (no loops). Folders that cannot be listed are skipped; `unreadable` receives each
    one as (path relative to root, why), for the ingest to report instead of dropping its files silently."""
    wanted = _wanted(languages)
    if root.is_file():
        language = language_of(root.name)
        if language not in wanted:
            return []
        return [SourceFile(str(root), root.name, BY_NAME[language].module_name(root.name, root.name, {}),  # type: ignore[index]
                           False, root.stat().st_size, language)]  # type: ignore[arg-type]
    base = root.parent if (root / "__init__.py").exists() else root
    markers = [BY_NAME[name] for name in LANGUAGES if name in wanted and BY_NAME[name].marker]
    marked: dict[str, dict[str, str]] = {name: {} for name in LANGUAGES}  # language -> folder -> read_marker()
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=_note_unlisted(base, unreadable,
                                                                                              exclude)):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        rel_dir = os.path.relpath(dirpath, base).replace(os.sep, "/")
        for parser in markers:  # go.mod, Cargo.toml
            if parser.marker in filenames:
                marked[parser.name][rel_dir] = parser.read_marker(os.path.join(dirpath, parser.marker), rel_dir)
        for name in sorted(filenames):
            language = language_of(name)
            if language not in wanted:
                continue
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"  # = relpath(full, base), without its per-file cost
            if any(fnmatch.fnmatch(rel, pattern) for pattern in exclude):
                continue
            size = _regular_file_size(full)
            if size is None:
                continue
            module = BY_NAME[language].module_name(rel, root.name, marked[language])  # type: ignore[index]
            found.append(SourceFile(full, rel, module, name == "__init__.py", size, language))  # type: ignore[arg-type]
    return found


def _regular_file_size(path: str) -> int | None:
    """The size of a regular file (a link to one counts), None for anything else: one `stat`
    where `isfile` + `getsize` made two per file (every ingest, the unchanged re-ingest too)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def has_source_files(root: Path, languages: list[str] | None = None,
                     unreadable: list[tuple[str, str]] | None = None) -> bool:
    """Whether discover() can find anything under root (stops at the first source file; cheap);
    `unreadable` receives the folders that could not be listed, as discover() reports them."""
    wanted = _wanted(languages)
    if root.is_file():
        return language_of(root.name) in wanted
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=_note_unlisted(root, unreadable)):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        if any(language_of(name) in wanted for name in filenames):
            return True
    return False


def _note_unlisted(base: Path, unreadable: list[tuple[str, str]] | None,
                   exclude: Iterable[str] = ()) -> Callable[[OSError], None]:
    """os.walk's onerror: a folder it could not list, as (path relative to base + '/', why), unless
    `exclude` covers it (a pattern such as '*/pgdata/*' matches the folder's 'pkg/pgdata/')."""
    def note(exc: OSError) -> None:
        if unreadable is None:
            return
        where = (os.path.relpath(exc.filename, base).replace(os.sep, "/") if exc.filename else ".") + "/"
        if not any(fnmatch.fnmatch(where, pattern) for pattern in exclude):
            unreadable.append((where, f"folder not read: {exc.strerror}"))
    return note


def unlisted_error(root: Path, field: str, unreadable: list[tuple[str, str]]) -> ConfigError:
    """No source file found, and some folder could not be listed: say so rather than 'no source files'."""
    where, why = unreadable[0]
    return ConfigError(f"`{field}` {root}: no source file could be listed ({where}: {why}); nothing was ingested.",
                       field=field, hint="Give the server's user read access to the folder, or pass another path.")


def no_source_error(root: Path, field: str, excluded: bool = False) -> ConfigError:
    what = "is not a Python file or another supported source file" if root.is_file() else \
        "holds no source files of the chosen languages" + (" (after `exclude`)" if excluded else "")
    return ConfigError(f"`{field}` {root} {what}; nothing was ingested and the graph is unchanged.", field=field,
                       hint=f"Point `path` at a folder or file of {_named(DISPLAY.values())} "
                       "sources (or `package` at an installed package with .py sources); check `exclude` and "
                       "`languages`.")


def _named(names: Iterable[str]) -> str:
    """`A, B or C`."""
    *head, last = names
    return f"{', '.join(head)} or {last}" if head else last


def default_codebase(root: Path, package: str | None = None) -> str:
    """The code base name users expect when they give none: the package's import name, else the
    folder's name (a package folder's name is its import name, e.g. `json`), or a single file's
    stem (`tool.py` -> `tool`). Characters outside [A-Za-z0-9_.-] become '-'."""
    raw = package or (root.stem if root.is_file() else root.name)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-._")[:64]
    return name or "codebase"


def check_root(path: str | None, package: str | None, codebase: str | None = None,
               languages: list[str] | None = None) -> tuple[Path, str]:
    """The root to ingest and its code base name; a coded error (graph untouched) for a path
    that does not exist or holds no source file of the chosen languages."""
    root = resolve_root(path, package)
    unreadable: list[tuple[str, str]] = []
    if not has_source_files(root, languages, unreadable):
        field = "path" if path else "package"
        raise unlisted_error(root, field, unreadable) if unreadable else no_source_error(root, field)
    return root, codebase or default_codebase(root, package)
