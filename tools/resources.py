"""MCP resources: datasets and models as readable documents (graphtune://...)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from graphtune.tools.dataset.catalog import list_datasets, preview, read_metadata
from graphtune.tools.resource_errors import coded
from graphtune.tools.services import ToolServices

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer


def register(app: "MCPServer", services: ToolServices) -> None:
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
