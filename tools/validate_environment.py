"""MCP tool `validate_environment`."""

from __future__ import annotations

from graphtune.tools.environment import EnvironmentReport, validate
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import mcp_tool


@mcp_tool(read_only=True, destructive=False, idempotent=True, open_world=True)
async def validate_environment(services: ToolServices) -> EnvironmentReport:
    """Check packages, devices, graph and disk first.

    Check that graphtune can work here: packages, GPU/MPS/CPU, QLoRA support, graph store, disk,
    and which base models load offline (compact; list_base_models has the detail).

    Call this first on a new machine. Each check says what it found and, when it fails, how
    to fix it. Takes a few seconds (it probes torch in a subprocess); never hangs on Neo4j.
    """
    return await validate(services.settings)
