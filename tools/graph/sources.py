"""Graph sources: which store a job reads, and reachability checks for validate_environment."""

from __future__ import annotations

from typing import Any


async def check_graph_source(settings: Any) -> list[Any]:
    from graphtune.tools.environment import Check

    checks = [Check(name="graph:embedded", ok=True, detail=f"LadybugDB at {settings.graph_dir} (created on first ingest)")]
    return checks
