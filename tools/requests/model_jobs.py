"""Requests of the jobs that use a finished model: merge, export, evaluate, compare and ask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from graphtune.tools.dataset.names import check_new_model_name
from graphtune.tools.errors import ConfigError, TrainingConfigError
from graphtune.tools.requests.base import JobRequest, param
from graphtune.tools.requests.train import Device
from graphtune.tools.training.registry import refuse_alias_name, trained_model_dir

if TYPE_CHECKING:
    from graphtune.tools.services import ToolServices

__all__ = ["AskRequest", "CompareRequest", "EvaluateRequest", "ExportRequest", "MergeRequest", "MAX_NEW_TOKENS"]

MAX_NEW_TOKENS = 1024


def _check_device(device: str) -> None:
    from graphtune.tools.training.preflight import check_device

    check_device(device)  # before anything is queued


class MergeRequest(JobRequest):
    """Fold a LoRA adapter into its base model and save a standalone model folder."""

    kind: ClassVar[str] = "merge"
    positional: ClassVar[tuple[str, ...]] = ("model_name",)

    model_name: str = param(description=(
        "Fine-tuned model (list_models) or alias to merge."), cli_help="Fine-tuned model name or alias (models).")
    output_name: str | None = param(None, description=(
        "Name of the merged model folder; default <model_name>-merged."))

    def preflight(self, services: "ToolServices") -> dict[str, Any]:
        """The model exists (an alias resolves to it); the output name is a free slug."""
        settings = services.settings
        model_name = trained_model_dir(settings, self.model_name).name
        output_name = self.output_name or f"{model_name}-merged"
        check_new_model_name(output_name, "output_name")
        refuse_alias_name(settings, output_name)
        if (settings.models_dir / output_name).exists():
            raise TrainingConfigError(f"`output_name`={output_name!r} already exists.", field="output_name",
                                      hint="Choose another output_name.")
        return {"model_name": model_name, "output_name": output_name}


ExportType = Literal["q8_0", "f16", "bf16", "q4_k_m", "q4_k_s", "q5_k_m", "q5_k_s", "q6_k", "q3_k_m", "q2_k"]


class ExportRequest(JobRequest):
    """A fine-tuned model as one GGUF file (adapter merged in) plus an Ollama Modelfile."""

    kind: ClassVar[str] = "export"
    positional: ClassVar[tuple[str, ...]] = ("model_name",)

    model_name: str = param(description="Model or alias.", cli_help="Fine-tuned model name or alias (models).")
    output_type: ExportType = param("q8_0", description="GGUF type; k-quants need llama-quantize.",
                                    cli_help="q8_0 (default), f16 or bf16; k-quants (q4_k_m ...) need llama.cpp's "
                                    "llama-quantize on PATH.")
    overwrite: bool = param(False, description="Redo an existing export.",
                            cli_help="Export again even if this model and type were exported before.")

    def preflight(self, services: "ToolServices") -> dict[str, Any]:
        """The model exists (an alias resolves to it); a k-quant needs `llama-quantize`."""
        from graphtune.tools.training.gguf_convert import INSTALL_QUANTIZE, K_QUANTS, quantize_binary

        params = {"model_name": trained_model_dir(services.settings, self.model_name).name,
                  "output_type": self.output_type,
                  "overwrite": self.overwrite}
        if self.output_type in K_QUANTS:
            binary = quantize_binary(services.settings)
            if not binary:
                raise ConfigError(f"`output_type`={self.output_type!r} needs llama.cpp's `llama-quantize`, which is "
                                  "not on PATH.", field="output_type",
                                  hint=f"Use q8_0, f16 or bf16, or {INSTALL_QUANTIZE}.")
            params["quantize_binary"] = binary
        return params


class EvaluateRequest(JobRequest):
    """Closed-book probes of a knowledge dataset, tuned vs base."""

    kind: ClassVar[str] = "evaluate"
    positional: ClassVar[tuple[str, ...]] = ("model_name",)

    model_name: str = param(description="Fine-tuned model (list_models) or alias to score.")
    dataset_name: str | None = param(None, description=(
        "Knowledge dataset whose probes to ask; default the one it trained on."))
    max_probes: int = param(600, ge=1, le=100000, description=(
        "Most probes to ask, stratified by fact type; default 600."))
    include_base: bool = param(True, description="Also score the base model for comparison; default true.")
    device: Device = param("auto", description="Device to run on; default auto (CUDA, else MPS, else CPU).")

    def preflight(self, services: "ToolServices") -> dict[str, Any]:
        from graphtune.tools.training.evaluate_job import probes_folder
        from graphtune.tools.training.registry import read_model_metadata

        _check_device(self.device)
        settings = services.settings
        model_name = trained_model_dir(settings, self.model_name).name  # an alias resolves to its model
        dataset = self.dataset_name or (read_model_metadata(settings, model_name).get("dataset") or {}).get("name")
        if not dataset:
            raise ConfigError(f"model `{model_name}` records no dataset to take the probes from.",
                              field="dataset_name", hint="Pass dataset_name: a knowledge dataset (list_datasets).")
        probes_folder(settings, dataset)
        return {"model_name": model_name, "dataset_name": dataset, "max_probes": self.max_probes,
                "include_base": self.include_base, "device": self.device}


class CompareRequest(JobRequest):
    """Two models on the same probes, per fact type."""

    kind: ClassVar[str] = "compare"
    positional: ClassVar[tuple[str, ...]] = ("model_a", "model_b", "dataset_name")

    model_a: str = param(description="First model to compare (list_models name or alias).")
    model_b: str = param(description="Second model to compare (list_models name or alias).")
    dataset_name: str = param(description="Knowledge dataset whose probes both models answer.")
    max_probes: int = param(600, ge=1, le=100000, description=(
        "Most probes to ask, stratified by fact type; default 600."))
    device: Device = param("auto", description="Device to run on; default auto (CUDA, else MPS, else CPU).")

    def preflight(self, services: "ToolServices") -> dict[str, Any]:
        from graphtune.tools.training.evaluate_job import probes_folder

        _check_device(self.device)
        settings = services.settings
        a = trained_model_dir(settings, self.model_a, "model_a").name
        b = trained_model_dir(settings, self.model_b, "model_b").name
        if a == b:
            raise ConfigError(f"`model_a` and `model_b` are both `{a}`.", field="model_b",
                              hint="Compare two different models (list_models).")
        probes_folder(settings, self.dataset_name)
        return {"model_a": a, "model_b": b, "dataset_name": self.dataset_name, "max_probes": self.max_probes,
                "device": self.device}


class AskRequest(JobRequest):
    """One prompt to a base or fine-tuned model (or both); the tool waits `wait_seconds` for the answer."""

    kind: ClassVar[str] = "ask"
    positional: ClassVar[tuple[str, ...]] = ("model", "prompt")

    prompt: str = param(min_length=1, max_length=20000, description="The question or instruction the model answers.")
    model: str = param(description="Fine-tuned or merged model name, or a base model (list_base_models).",
                       cli_help="Fine-tuned model (models), merged model or base model (base-models).")
    compare: bool = param(False, description="Also answer with the fine-tuned model's base; default false.")
    system_prompt: str | None = param(None, max_length=4000, description=(
        "System message sent before the prompt; default none."))
    max_new_tokens: int = param(128, ge=1, le=MAX_NEW_TOKENS, description=(
        "Most tokens generated per answer; default 128."))
    timeout_seconds: int = param(300, ge=5, le=1800, description="Generation time limit in seconds; default 300.")
    wait_seconds: float = param(45, ge=0, le=120, description=(
        "Seconds to wait for the answer before returning the job id; default 45."))
    device: Device = param("auto", description="Device to run on; default auto (CUDA, else MPS, else CPU).")

    def preflight(self, services: "ToolServices") -> dict[str, Any]:
        """Device, non-empty prompt and a model that can be loaded; the job's params name what to load."""
        from graphtune.tools.training.ask_target import ask_target

        _check_device(self.device)
        if not self.prompt.strip():
            raise ConfigError("`prompt` is empty.", field="prompt", hint="Pass the question to answer.")
        return {**ask_target(services.settings, self.model, self.compare), "prompt": self.prompt,
                "compare": self.compare, "system_prompt": self.system_prompt, "max_new_tokens": self.max_new_tokens,
                "timeout_seconds": self.timeout_seconds, "device": self.device}
