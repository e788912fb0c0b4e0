"""Model resources: graphtune://models, graphtune://models/{name}, and the loss plot as an image."""

from __future__ import annotations

import json
from typing import Any

from graphtune.tools.resource_errors import coded
from graphtune.tools.services import ToolServices
from graphtune.tools.training.registry import list_all, model_dir, read_merge_metadata, read_model_metadata


def register_model_resources(app: Any, services: ToolServices) -> None:
    settings = services.settings

    @app.resource("graphtune://models", name="models", mime_type="application/json",
                  description="All fine-tuned models, newest first; subscribe to hear of promotions.")
    @coded
    def models() -> str:
        return json.dumps([m.model_dump() for m in list_all(services.store, settings)], indent=1)

    @app.resource("graphtune://models/{name}", name="model", mime_type="application/json",
                  description="A model's training_metadata.json (a merged model's merge_metadata.json).")
    @coded
    def model(name: str) -> str:
        # graphtune://models lists merged models too: reading one must not fail as "not an adapter"
        folder = model_dir(settings, name, merged=True)
        if (folder / "merge_metadata.json").is_file():
            return json.dumps(read_merge_metadata(folder), indent=1)
        return json.dumps(read_model_metadata(settings, name), indent=1)

    @app.resource("graphtune://models/{name}/evaluation", name="model-evaluation", mime_type="application/json",
                  description="Closed-book knowledge evaluation (base vs tuned, per fact type) of a model.")
    @coded
    def evaluation(name: str) -> str:
        folder = model_dir(settings, name)
        meta = read_model_metadata(settings, name)
        found = {p.stem: json.loads(p.read_text()) for p in sorted((folder / "evaluations").glob("*.json"))} \
            if (folder / "evaluations").is_dir() else {}
        return json.dumps({"at_training": meta.get("knowledge"), "evaluations": found}, indent=1)

    @app.resource("graphtune://models/{name}/loss.png", name="model-loss-plot", mime_type="image/png",
                  description="Train/eval loss curves of a model.")
    @coded
    def loss_plot(name: str) -> bytes:
        return (model_dir(settings, name) / "loss.png").read_bytes()
