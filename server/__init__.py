"""graphtune's MCP server: app factory, settings, job store and background runner.

Nothing here imports torch/transformers/peft/bitsandbytes: those load only inside the
job worker, so a client's first `tools/list` is answered as fast as a bare MCP server.
"""

from graphtune.tools.version import __version__

__all__ = ["__version__"]
