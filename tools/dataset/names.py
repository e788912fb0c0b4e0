"""Safe names for the folders graphtune creates (datasets, models): slugs that cannot escape their root."""

from __future__ import annotations

import re
from pathlib import Path

from graphtune.tools.errors import ConfigError, GraphtuneError, shown

__all__ = ["MODEL_FILE_SUFFIX", "NAME_PATTERN", "check_name", "check_new_model_name", "check_new_name", "named_folder"]

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MODEL_FILE_SUFFIX = ".gguf"  # a model name with this ending is read as a GGUF file (ask_model, base_model)


def check_name(value: str, field: str) -> str:
    """A safe folder name: lowercase slug, no path separators, no '..', no hidden names."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value) or ".." in value:
        raise ValueError(f"`{field}`={shown(value)} must be a slug: 1-64 chars of a-z, 0-9, '_', '-', '.', starting "
                         "with a letter or digit, no '..' (e.g. 'httpx-docs-v1')")
    return value


def check_new_name(value: str, field: str, file_suffix: str) -> str:
    """check_name, for a name about to be created: it may not end in `file_suffix` either, because where
    the name is used later a value with that ending is read as a file (a dataset `x.jsonl` as a JSONL
    path by start_fine_tuning, a model `x.gguf` as a GGUF base by ask_model). Lookups of existing names
    keep the plain slug rule, so nothing made before this rule becomes unreachable."""
    check_name(value, field)
    if value.endswith(file_suffix):
        raise ValueError(f"`{field}`={value!r} ends in {file_suffix}, and a name like that is read as a file path "
                         f"where it is used; drop the suffix (e.g. {value[:-len(file_suffix)]!r})")
    return value


def check_new_model_name(value: str, field: str, error: type[GraphtuneError] = ConfigError,
                         hint: str | None = None) -> str:
    """check_new_name for a model folder or alias about to be created (a training or merge output_name,
    a promote alias): the one place that says such a name may not end in MODEL_FILE_SUFFIX, so the
    tools that make model names cannot drift apart. The refusal is `error` (the caller's layer: a
    training config reports TrainingConfigError) on `field`, with the caller's `hint`."""
    try:
        return check_new_name(value, field, MODEL_FILE_SUFFIX)
    except ValueError as exc:
        raise error(str(exc), field=field, hint=hint) from exc


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
