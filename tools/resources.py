"""MCP resources: datasets and models as readable documents (graphtune://...)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graphtune.tools.dataset.catalog import list_datasets, preview, read_metadata
from graphtune.tools.errors import GraphtuneError

if TYPE_CHECKING:
    from graphtune.server.services import Services
    from mcp.server.mcpserver import MCPServer


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
            raise (ResourceNotFoundError if missing else ResourceError)(str(exc)) from exc

    return wrapper


def register(app: "MCPServer", services: "Services") -> None:
    settings = services.settings

    @app.resource("graphtune://datasets", name="datasets", mime_type="application/json",
                  description="All datasets, newest first.")
    @coded
    def datasets() -> str:
        return json.dumps([d.model_dump() for d in list_datasets(settings)], indent=1)

    @app.resource("graphtune://datasets/{name}", name="dataset", mime_type="application/json",
                  description="A dataset's metadata.json.")
    @coded
    def dataset(name: str) -> str:
        return json.dumps(read_metadata(settings, name), indent=1)

    @app.resource("graphtune://datasets/{name}/samples", name="dataset-samples", mime_type="application/json",
                  description="The first five training records of a dataset.")
    @coded
    def samples(name: str) -> str:
        return json.dumps(preview(settings, name, "train", 0, 5)[0], indent=1)

    @app.resource("graphtune://jobs/{job_id}", name="job", mime_type="application/json",
                  description="A job's status (as get_training_status); subscribe to hear when its state changes.")
    @coded
    def job(job_id: str) -> str:
        from graphtune.tools.jobs import job_view

        return job_view(services.store, job_id).model_dump_json(indent=1)

    from graphtune.tools.training.registry_resources import register_model_resources

    register_model_resources(app, services)
