"""`coded`: resource errors in the coded format, shared by the dataset and model resources."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from graphtune.tools.errors import GraphtuneError

__all__ = ["coded"]


def coded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Resource errors read like tool errors (`[code] message (field x) Hint: fix`), not the SDK's
    generic "Error creating resource from template"; an unknown name is a not-found (-32602)."""
    from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GraphtuneError as exc:
            missing = exc.code.endswith(("not_found", "unknown"))
            if exc.field and exc.field not in kwargs:  # the engine names its tool argument; a resource has a
                exc.field = next(iter(kwargs), None)  # URI parameter ({name}, {job_id}) instead
            raise (ResourceNotFoundError if missing else ResourceError)(str(exc)) from exc

    return wrapper
