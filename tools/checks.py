"""`Check`: one line of validate_environment's report.

Its own module so that the graph stores can report checks without importing
graphtune.tools.environment (which imports them: that was an import circle)."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["Check"]


class Check(BaseModel):
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    # False for a capability graphtune works without (QLoRA needs CUDA): when such a check is not ok
    # it is a warning, listed in the summary, and does not fail the report.
    required: bool = True
