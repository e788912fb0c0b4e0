"""graphtune's version: declared here once (pyproject.toml reads it from this file).

A literal rather than `importlib.metadata.version()`: the lookup scans the installed
distributions (~25 ms, most of a second of start-up budget for `graphtune serve`, which
every MCP client session pays). It lives in tools/ so that domain modules never import
from server/ (imports flow server -> tools -> domain; tests/unit/test_import_direction.py checks it)."""

__version__ = "0.1.0"
