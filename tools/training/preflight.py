"""Checks a training request must pass before it is queued (cheap: no torch import).

What the request itself declares (types, bounds, choices) is checked by
graphtune.tools.requests.train.TrainRequest; this is what needs the data dir and the machine:
the dataset's lines, the base model, free names and disk, the device, the preset.
"""

from __future__ import annotations

from typing import Any

from graphtune.tools.dataset.atomic import ensure_free_space
from graphtune.tools.errors import TrainingConfigError
from graphtune.tools.services import ToolServices
from graphtune.tools.training.base_models import check_base_model
from graphtune.tools.training.config import LoraJobConfig
from graphtune.tools.training.data_files import locate, read_conversations
from graphtune.tools.training.presets import apply_preset
from graphtune.tools.training.registry import model_dir, refuse_alias_name

MIN_FREE_GIB = 1.0


def validate_request(services: ToolServices, params: dict[str, Any]) -> LoraJobConfig:
    dataset = params.get("dataset_name")
    if not isinstance(dataset, str) or not dataset:
        raise TrainingConfigError("`dataset_name` is required.", field="dataset_name", hint="Call list_datasets.")
    files = locate(services.settings.datasets_dir, dataset)
    if params.get("init_adapter"):  # an alias (promote_model) resolves to its model's name before queueing
        params = {**params, "init_adapter": model_dir(services.settings, params["init_adapter"], "init_adapter").name}
    cfg = LoraJobConfig.from_dict(apply_preset(params, files.metadata.get("objective")))
    check_device(cfg.device)
    read_conversations(files.train)  # line-numbered errors now, not after the job started
    if files.eval:
        read_conversations(files.eval)
    cfg.base_model = check_base_model(cfg.base_model, services.settings)  # absolute when it is a path
    if cfg.output_name and (services.settings.models_dir / cfg.output_name).exists():
        raise TrainingConfigError(f"a model named `{cfg.output_name}` already exists.", field="output_name",
                                  hint="Choose another output_name, or list_models.")
    if cfg.output_name:
        refuse_alias_name(services.settings, cfg.output_name)
    if not cfg.dry_run:  # checkpoints and the adapter need room; a full disk fails before queueing
        ensure_free_space(services.settings.models_dir, MIN_FREE_GIB, "output_name")
    if cfg.init_adapter:
        model_dir(services.settings, cfg.init_adapter)
    if cfg.method == "qlora" and (cfg.device in ("cpu", "mps") or (cfg.device == "auto" and not nvidia_gpu_present())):
        raise TrainingConfigError("`method`='qlora' needs a CUDA GPU and none is usable here "
                                  f"(`device`={cfg.device!r}).", field="method",
                                  hint="Use method='lora' on CPU/MPS; 4-bit QLoRA runs only on CUDA.")
    if cfg.strategy == "fsdp" and (cfg.device in ("cpu", "mps") or (cfg.device == "auto" and not nvidia_gpu_present())):
        raise TrainingConfigError("`strategy`='fsdp' shards weights over CUDA GPUs and none is usable here.",
                                  field="strategy", hint="Use strategy='ddp' (or 'auto') off CUDA.")
    return cfg


def check_device(device: str, field: str = "device") -> None:
    """Refuse a device this machine cannot have before anything is queued (cheap: no torch import)."""
    import sys

    if device == "cuda" and not nvidia_gpu_present():
        raise TrainingConfigError("`device`='cuda' but no NVIDIA GPU is visible on this machine.", field=field,
                                  hint="Use device='auto' (or 'cpu'); validate_environment shows the devices here.")
    if device == "mps" and sys.platform != "darwin":
        raise TrainingConfigError(f"`device`='mps' needs Apple silicon (macOS); this machine runs {sys.platform}.",
                                  field=field, hint="Use device='auto' (or 'cpu'); validate_environment shows "
                                  "the devices here.")


def nvidia_gpu_present() -> bool:
    """Cheap pre-check without importing torch; the worker checks torch.cuda authoritatively."""
    import glob
    import os

    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.isdir("/proc/driver/nvidia/gpus")


def nvidia_gpu_count() -> int:
    """Visible NVIDIA GPUs without importing torch (CUDA_VISIBLE_DEVICES limits them)."""
    import glob
    import os

    if not nvidia_gpu_present():
        return 0
    found = len(glob.glob("/dev/nvidia[0-9]*")) or len(glob.glob("/proc/driver/nvidia/gpus/*")) or 1
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return min(found, len([v for v in visible.split(",") if v.strip()])) if visible else found


def cheap_device(requested: str) -> str:
    """The device a job will train on, as the worker's resolve_device picks it, without torch."""
    import platform
    import sys

    if requested != "auto":
        return requested
    if nvidia_gpu_present():
        return "cuda"
    return "mps" if sys.platform == "darwin" and platform.machine() == "arm64" else "cpu"
