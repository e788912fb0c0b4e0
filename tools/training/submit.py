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
    params = {**job.params, "resume": True}
    if gpus is not None:
        params.update(LoraJobConfig.from_job(params).updated(gpus=gpus).job_params())
    job = services.store.requeue(job_id, params)
    services.runner.dispatch()
    return job
