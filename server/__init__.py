"""graphtune's MCP server: app factory, settings, job store and background runner.

Nothing here imports torch/transformers/peft/bitsandbytes: those load only inside the
job worker, so a client's first `tools/list` is answered as fast as a bare MCP server.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("graphtune")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
