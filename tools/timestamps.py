"""One timestamp format in every reply: ISO 8601 UTC text (issue 22: no Unix floats beside ISO text)."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["iso"]


def iso(ts: float | str | None) -> str | None:
    """`2026-01-02T03:04:05+00:00` for a Unix time; ISO text is passed through; None stays None."""
    if ts is None or ts == "":
        return None
    if isinstance(ts, str):
        return ts
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")
