"""One request model per job kind (and for retrain): where each tool parameter is declared (see `base`)."""

from graphtune.tools.requests.base import JobRequest, ToolRequest, param, queue, request_tool, tool_parameters
from graphtune.tools.requests.extract import ExtractRequest
from graphtune.tools.requests.ingest import IngestRequest
from graphtune.tools.requests.model_jobs import AskRequest, CompareRequest, EvaluateRequest, ExportRequest, MergeRequest
from graphtune.tools.requests.retrain import RetrainRequest
from graphtune.tools.requests.train import TrainRequest

__all__ = ["AskRequest", "CompareRequest", "EvaluateRequest", "ExportRequest", "ExtractRequest", "IngestRequest", "JobRequest",
           "MergeRequest", "RetrainRequest", "ToolRequest", "TrainRequest", "param", "queue", "request_tool", "tool_parameters"]
