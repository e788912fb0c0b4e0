"""graphtune's version, for metadata written by the domain code (datasets, models).

It lives in tools/ so that domain modules never import from server/ (imports flow
server -> tools -> domain; tests/unit/test_import_direction.py checks it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("graphtune")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
