"""MCP tool `export_model`: a fine-tuned model as a GGUF file for llama.cpp, Ollama and LM Studio.

Its parameters are declared once, in graphtune.tools.requests.model_jobs."""

from __future__ import annotations

from typing import Any

from graphtune.tools.jobs import JobView
from graphtune.tools.requests import ExportRequest, queue, request_tool
from graphtune.tools.services import ToolServices
from graphtune.tools.tool_registry import JobKind, Resources, mcp_tool


def export_resources(params: dict[str, Any], settings: Any) -> Resources:
    """Writes the model's gguf/ folder (one export of a model at a time)."""
    return Resources(writes=(f"model:{params['model_name']}",))


EXPORT_JOB = JobKind("export", "graphtune.tools.training.gguf_export:run_export_job", True,
                     "Merge and convert a model to GGUF for llama.cpp / Ollama.", export_resources)


@mcp_tool(read_only=False, destructive=False, idempotent=True, jobs=(EXPORT_JOB,))
@request_tool(ExportRequest)
def export_model(services: ToolServices, request: ExportRequest) -> JobView:
    """Export a model to GGUF + Ollama Modelfile (job).

    Merge the adapter into its base and convert it with llama.cpp's converter into one GGUF file
    (q8_0 default, f16, bf16; k-quants with llama-quantize) that carries the chat template and
    the end-of-turn tokens, with an Ollama Modelfile beside it. The result gives the paths and the
    `ollama create` command; list_models lists exports. The same model and type again reuses the
    file unless overwrite=true. Needs memory for the full model (like merge_adapter).
    """
    return queue(services, request)
