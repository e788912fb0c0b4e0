"""Resume a stopped training job (queueing a new one validates a request: graphtune.tools.start_fine_tuning.submit_training)."""

from __future__ import annotations

from typing import Any

from graphtune.tools.errors import JobStateConflict
from graphtune.tools.services import ToolServices
from graphtune.tools.training.config import LoraJobConfig


def resume_training(services: ToolServices, job_id: str, gpus: int | str | None = None) -> Any:
    """Requeue a stopped training job; `gpus` may change the GPU count (the data order stays)."""
    job = services.store.get(job_id)
    if job.kind != "train":
        raise JobStateConflict(f"job `{job_id}` is a `{job.kind}` job; only training jobs resume.", field="job_id")
    if job.status.value in ("failed", "cancelled", "interrupted"):  # the store words the other states' refusal
        refuse_unfinishable(services, job)
    params = {**job.params, "resume": True}
    if gpus is not None:
        params.update(LoraJobConfig.from_job(params).updated(gpus=gpus).job_params())
    job = services.store.requeue(job_id, params)
    services.runner.dispatch()
    return job


def refuse_unfinishable(services: ToolServices, job: Any) -> None:
    """A stopped job that could not finish is refused before it is requeued, not after a whole run:
    its output_name may have been taken since (start_fine_tuning only refuses a folder that exists),
    and the model it continues (init_adapter) may have been deleted since; either would fail in the
    worker. The adapter is resolved as start_fine_tuning resolves it (registry.model_dir)."""
    from graphtune.tools.errors import ModelUnknown
    from graphtune.tools.training.registry import model_dir

    config = job.params.get("config") or {}
    name, parent = config.get("output_name"), config.get("init_adapter")
    if name and (services.settings.models_dir / name).exists():
        raise JobStateConflict(f"job `{job.id}` saves its model as `{name}`, and a model of that name exists now "
                               "(made after this job stopped); resuming would train to the end and fail to save.",
                               field="job_id", hint=f"delete_model('{name}') if that model is not wanted, then "
                               "resume; or start_fine_tuning again with another output_name.")
    if parent:
        try:
            model_dir(services.settings, parent, "init_adapter")
        except ModelUnknown as exc:
            raise JobStateConflict(f"job `{job.id}` continues the model `{parent}` (init_adapter), which no longer "
                                   "exists; it cannot resume.", field="job_id", hint="start_fine_tuning again with "
                                   "another init_adapter (list_models), or without one.") from exc
