"""Safe names for the folders graphtune creates (datasets, models): slugs that cannot escape their root."""

from __future__ import annotations

import re
from pathlib import Path

from graphtune.tools.errors import ConfigError, GraphtuneError, shown

__all__ = ["NAME_PATTERN", "check_name", "named_folder"]

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


FILE_SUFFIXES = (".jsonl", ".gguf")  # where a name is also taken as a file path (dataset_name, base_model)


def check_name(value: str, field: str) -> str:
    """A safe folder name: lowercase slug, no path separators, no '..', no hidden names; not ending
    like a file that the same field also accepts (a dataset named `x.jsonl` would be read as a path)."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value) or ".." in value:
        raise ValueError(f"`{field}`={shown(value)} must be a slug: 1-64 chars of a-z, 0-9, '_', '-', '.', starting "
                         "with a letter or digit, no '..' (e.g. 'httpx-docs-v1')")
    if value.endswith(FILE_SUFFIXES):
        raise ValueError(f"`{field}`={value!r} ends like a file ({', '.join(FILE_SUFFIXES)}), and a name like that is "
                         "read as a file path where files are accepted; drop the suffix (e.g. "
                         f"{value.rsplit('.', 1)[0]!r})")
    return value


def named_folder(root: Path, name: str, *, field: str, marker: str, missing: type[GraphtuneError], what: str,
                 list_tool: str) -> Path:
    """`root/name` for a validated slug whose folder holds `marker`; symlinked folders count as absent."""
    try:
        check_name(name, field)
    except ValueError as exc:
        raise ConfigError(str(exc), field=field, hint=f"Call {list_tool} to see existing names.") from exc
    folder = root / name
    if folder.is_symlink() or not (folder / marker).is_file():
        raise missing(f"no {what} named `{name}` in {root}.", field=field, hint=f"Call {list_tool}.")
    return folder
