"""`TrainRequest`: the parameters of a training job (`start_fine_tuning`, `graphtune train`).

The settings are declared once, in graphtune.tools.training.config.LoraJobConfig; this module adds
what only a request does: the preflight before queueing, the dry run and the no-effect rules.
Settings left out (None) take the preset's value (graphtune.tools.training.presets) and then
LoraJobConfig's default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from graphtune.tools.requests.base import JobRequest
from graphtune.tools.requests.derive import cli_only_settings, settings_request
from graphtune.tools.requests.no_effect import NoEffect, refuse_without_effect
from graphtune.tools.training.config import Device, LoraJobConfig

if TYPE_CHECKING:
    from graphtune.tools.services import ToolServices

__all__ = ["Device", "TrainRequest"]


# the fields are LoraJobConfig's settings, declared there once (graphtune.tools.requests.derive)
class TrainRequest(settings_request("TrainSettings", LoraJobConfig, JobRequest, __name__)):  # type: ignore[misc]
    """Fine-tune a causal LM with LoRA/QLoRA; preflight resolves the preset into a LoraJobConfig."""

    kind: ClassVar[str] = "train"
    positional: ClassVar[tuple[str, ...]] = ("dataset_name", "base_model")
    cli_only: ClassVar[frozenset[str]] = cli_only_settings(LoraJobConfig)

    def preflight(self, services: "ToolServices") -> dict[str, Any]:
        """Dataset lines, base model, device, free name and disk; the job stores the resolved config."""
        return self.config(services).job_params()

    def config(self, services: "ToolServices") -> LoraJobConfig:
        """What the job will run: the no-effect rules, then the preset and the checks of the machine."""
        from graphtune.tools.training.data_files import locate
        from graphtune.tools.training.preflight import nvidia_gpu_present, validate_request

        objective = locate(services.settings.datasets_dir, self.dataset_name).metadata.get("objective")
        data = self.model_dump()
        refuse_without_effect(type(self), data, without_effect(data, objective, nvidia_gpu_present()))
        return validate_request(services, self.model_dump(exclude_none=True))

    def plan(self, services: "ToolServices") -> dict[str, Any]:
        """The dry run, answered at once (no job): the config, then the plan the worker would follow."""
        from graphtune.tools.requests.no_effect import given
        from graphtune.tools.training.data_files import locate
        from graphtune.tools.training.plan import plan_training

        config = self.config(services)
        data = self.model_dump()
        passed = {name: data[name] for name in self.public_fields() if given(type(self), data, name)}
        files = locate(services.settings.datasets_dir, self.dataset_name)
        return plan_training(services.settings, config, files, passed, services.store)


def without_effect(data: dict[str, Any], objective: str | None, gpu_present: bool) -> list[NoEffect]:
    """The training settings this request's mode never reads (refused by preflight, see no_effect)."""
    rules = []
    if objective != "knowledge":
        rules += [NoEffect("max_probes", "closed-book probes exist only for knowledge datasets and "
                           f"`dataset_name`={data.get('dataset_name')!r} is not one",
                           "Omit `max_probes`, or train on a dataset built with objective='knowledge'.")]
    elif not data.get("evaluate_probes", True):
        rules += [NoEffect("max_probes", "evaluate_probes=false answers no probes",
                           "Omit `max_probes`, or set evaluate_probes=true.")]
    off_gpu = data.get("device") in ("cpu", "mps") or (data.get("device") == "auto" and not gpu_present)
    if off_gpu:
        rules += [NoEffect("max_memory_gib", "it caps GPU memory and this job trains on the CPU/MPS",
                           "Omit `max_memory_gib` off CUDA (lower tokens_per_batch to use less RAM).")]
    one_rank = data.get("gpus") == 1 or (data.get("gpus") == "auto" and off_gpu)
    if one_rank and data.get("strategy") == "ddp":
        rules += [NoEffect("strategy", "it chooses how several GPUs share the work and this job runs one rank",
                           "Omit `strategy`, or set gpus to a count above 1.")]
    return rules
