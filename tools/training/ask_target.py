"""What an `ask` job loads: a fine-tuned adapter, a merged model folder or a base model."""

from __future__ import annotations

from typing import Any

from graphtune.tools.errors import GraphtuneError, ModelNotFound
from graphtune.tools.training.base_models import check_base_model
from graphtune.tools.training.registry import model_dir

__all__ = ["ask_target"]


def ask_target(settings: Any, model: str, compare: bool) -> dict[str, Any]:
    """Job params naming what to load; coded errors before anything is queued."""
    try:
        # the real name, as the other model jobs record it: an alias moved later does not change what
        # this job loads, and delete_model's in-use check and the job's resources see the model itself
        return {"adapter": model_dir(settings, model).name}
    except GraphtuneError as exc:  # ModelUnknown, or a name that is no slug (a path, a hub id)
        if compare:
            raise ModelNotFound(f"`model`={model!r} is not a fine-tuned model; compare=true answers with a fine-tuned "
                                "model and its base side by side.", field="model",
                                hint="Call list_models for fine-tuned model names, or set compare=false to ask a "
                                "base model.") from exc
    merged = settings.models_dir / model
    if model and "/" not in model and not model.startswith(".") and (merged / "config.json").is_file() \
            and not merged.is_symlink():
        return {"base_model": str(merged), "merged": model}  # a merged model (merge_adapter): a plain model folder
    try:
        base = check_base_model(model, settings, field="model")
    except ModelNotFound as exc:
        raise ModelNotFound(f"`model`={model!r} is neither a fine-tuned model nor a usable base model ({exc.message})",
                            field="model", hint="Call list_models for fine-tuned models, or list_base_models for "
                            "base models (built-in names, .gguf files, folders, cached hub ids).") from exc
    return {"base_model": base}
