"""MCP tool `delete_model`: remove a model folder and its registry row (destructive)."""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Annotated

from graphtune.tools.errors import JobStateConflict, StorageError
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool
from graphtune.tools.training.registry import model_dir
from pydantic import BaseModel, Field


class Deletion(BaseModel):
    model_name: str
    deleted_path: str
    aliases_removed: list[str] = Field(description="Aliases that pointed to it (removed with force=true).")


def _jobs_using(store: object, name: str) -> list[str]:
    """Queued or running jobs that read or write this model."""
    found = []
    for status in ("queued", "running"):
        jobs, _ = store.list(status=status, limit=1000)  # type: ignore[attr-defined]
        for job in jobs:
            cfg = job.params.get("config") or {}
            names = {job.params.get(k) for k in ("model_name", "model_a", "model_b", "adapter", "merged")} | {
                cfg.get("init_adapter"), cfg.get("output_name")}  # adapter / merged: what an ask job loads
            if name in names:
                found.append(job.id)
    return found


@mcp_tool(read_only=False, destructive=True, idempotent=False)
def delete_model(
    services: ToolServices,
    model_name: Annotated[str, Field(description="Name of the fine-tuned or merged model to delete (list_models).")],
    force: Annotated[bool, Field(description="Delete even if an alias points at it; default false.")]
    = False,
) -> Deletion:
    """Delete a fine-tuned model for good.

    Delete a fine-tuned model: its folder under models/ and its registry row. Cannot be undone.

    Refuses a model an alias (e.g. `current`) points to unless force=true, and always refuses
    one a queued or running job uses.
    """
    settings = services.settings
    folder = model_dir(settings, model_name, merged=True)
    name = folder.name
    aliases = sorted(a for a, target in services.store.aliases().items() if target == name)
    if aliases and not force:
        raise JobStateConflict(f"model `{name}` is aliased as {', '.join(map(repr, aliases))}; nothing was deleted.",
                               field="force", hint="promote_model another model to that alias first, or pass "
                               "force=true to delete the model and its aliases.")
    busy = _jobs_using(services.store, name)
    if busy:
        raise JobStateConflict(f"model `{name}` is in use by job(s) {', '.join(busy)}; nothing was deleted.",
                               field="model_name", hint="Wait for them to finish or cancel_job them, then retry.")
    trash = folder.parent / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
    try:
        os.replace(folder, trash)  # atomic: the model is gone from every listing at once
    except OSError as exc:
        raise StorageError(f"cannot remove {folder}: {exc}", field="model_name") from exc
    services.store.delete_model(name)
    shutil.rmtree(trash, ignore_errors=True)
    return Deletion(model_name=name, deleted_path=str(folder), aliases_removed=aliases)
