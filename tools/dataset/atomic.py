"""Publish a folder atomically: write into a hidden temp sibling, then rename into place.

A crash or cancel before the rename leaves only a `.tmp-*` folder (swept on the next run),
never a half-written dataset or model under its real name.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from graphtune.tools.errors import DatasetExists, StorageError


def ensure_free_space(folder: Path, min_gib: float, field: str) -> None:
    """Refuse work up front when the output disk is nearly full, instead of failing halfway."""
    try:
        free = shutil.disk_usage(folder if folder.exists() else folder.parent).free / 2**30
    except OSError as exc:
        raise StorageError(f"cannot inspect {folder}: {exc}", field=field) from exc
    if free < min_gib:
        raise StorageError(f"only {free:.2f} GiB free under {folder}; this job needs at least {min_gib} GiB.",
                           field=field, hint="Free disk space or point GRAPHTUNE_HOME at a larger disk.")


# Outputs whose tools take overwrite=true; a model (train, merge) or a converted base has no such
# parameter, so a hint to pass it would lead nowhere.
OVERWRITABLE = frozenset({"dataset", "export"})


def refuse_existing(final: Path, *, overwrite: bool, what: str, field: str) -> None:
    """DatasetExists when `final` is there and overwriting was not asked for."""
    if final.exists() and not overwrite:
        raise DatasetExists(f"{what} `{final.name}` already exists.", field=field,
                            hint=_existing_hint(what, field))


def _existing_hint(what: str, field: str) -> str:
    if what in OVERWRITABLE:
        return "Choose another name or pass overwrite=true."
    if what == "model":
        return f"Choose another `{field}`, or delete_model the existing one (list_models)."
    return "Choose another name."


def write_text_atomic(path: Path, text: str) -> None:
    """Replace a small file whole: a reader sees the old text or the new one, never a torn or empty
    file (the other ranks of a distributed job read the state file rank 0 rewrites)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def temp_sibling(final: Path) -> Path:
    tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise StorageError(f"cannot create {tmp}: {exc}", hint="Check GRAPHTUNE_HOME is writable and has space.") from exc
    return tmp


def publish(tmp: Path, final: Path, *, overwrite: bool, what: str, field: str = "dataset_name") -> None:
    """Rename tmp -> final. With overwrite, the old folder is swapped out first, then deleted."""
    if final.is_symlink():
        raise StorageError(f"{final} is a symlink; refusing to write through it.", hint="Remove the link.")
    old = None
    if final.exists():
        try:
            refuse_existing(final, overwrite=overwrite, what=what, field=field)
        except DatasetExists:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_folder(final: Path, *, overwrite: bool, what: str, field: str) -> Iterator[Path]:
    """Yield a temp folder to fill; publish it as `final` when the block succeeds.

    On any error the temp folder is removed at once, and an OS error while writing (disk full,
    quota, I/O) becomes a StorageError saying so — never a half-written output."""
    tmp = temp_sibling(final)
    try:
        yield tmp
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        raise StorageError(f"{'disk full' if full else 'write failed'} while writing {what} `{final.name}`: {exc}",
                           field=field, hint="Free disk space (or fix the folder) and run the job again; "
                           "nothing was published.") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish(tmp, final, overwrite=overwrite, what=what, field=field)


def sweep_temp(folder: Path, older_than_s: float = 3600.0) -> None:
    """Remove leftovers of crashed writes (temp and swapped-out folders)."""
    if not folder.is_dir():
        return
    now = time.time()
    for entry in folder.iterdir():
        if entry.name.startswith((".tmp-", ".old-")) and now - entry.stat().st_mtime > older_than_s:
            shutil.rmtree(entry, ignore_errors=True)
