"""Queue a training job (validated by its request model and preflight), or resume one."""

from __future__ import annotations

from typing import Any

from graphtune.tools.errors import JobStateConflict
from graphtune.tools.requests.train import TrainRequest
from graphtune.tools.services import JobRecordView, ToolServices
from graphtune.tools.training.config import LoraJobConfig
from graphtune.tools.training.preflight import check_device, validate_request  # noqa: F401 - re-exported


def submit_training(services: ToolServices, params: dict[str, Any]) -> JobRecordView:
    """What start_fine_tuning does, for Python callers (tests, benchmarks): the same request model
    (bounds, choices), the same preflight, the same queue."""
    request = TrainRequest.parse({k: v for k, v in params.items() if v is not None})
    return services.runner.submit("train", request.preflight(services))


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
