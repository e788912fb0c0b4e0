"""The one error hierarchy. Every error has a stable snake_case `code`, a message that says
what was wrong, the offending `field` when there is one, and a `hint` that says how to fix it.

    GraphtuneError
    ├── ConfigError             bad setting or argument (field names the argument)
    │   └── ParameterWithoutEffect  a parameter that does nothing in the chosen mode (never silently ignored)
    ├── GraphError
    │   ├── GraphUnavailable    cannot reach/open/authenticate the graph store
    │   │   └── CodebaseIncomplete  a code base whose last ingest stopped before it finished (re-ingest repairs it)
    │   ├── QueryFailed         a query failed or timed out
    │   ├── SchemaMismatch      the graph lacks the labels/properties the mapping expects
    │   └── VersionNotFound     a graph version (or dataset naming one) a code base never recorded
    ├── IngestError
    ├── DatasetError
    │   ├── DatasetNotFound
    │   ├── DatasetExists
    │   └── DatasetInvalid      a JSONL line is malformed (message carries the line number)
    ├── TrainingError
    │   ├── TrainingConfigError
    │   ├── ModelNotFound       the base model (hub id / folder) cannot be found
    │   ├── ModelUnknown        no finished graphtune model of that name
    │   ├── ModelUnsupported    a model file transformers cannot load (e.g. a GGUF of an unsupported architecture)
    │   ├── GenerationTimeout   generation passed its wall-clock deadline (carries the answers finished so far)
    │   ├── OutOfMemory
    │   └── ExportFailed        llama.cpp's converter or llama-quantize failed, or the GGUF lacks its chat template
    │                           or an end-of-turn token (nothing is published)
    ├── JobError
    │   ├── JobNotFound
    │   ├── JobStateConflict
    │   └── JobCancelled        raised inside a worker at a safe point after a cancel request
    └── StorageError            disk full / not writable / corrupt SQLite file
"""

from __future__ import annotations

from typing import Any


class GraphtuneError(Exception):
    """Base class: carries code, message, field and hint for clients and job records."""

    code = "graphtune_error"

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field, "hint": self.hint}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "GraphtuneError":
        """The error another process recorded (a training rank), with its code kept."""
        err = cls(str(data.get("message", "")), field=data.get("field"), hint=data.get("hint"))
        err.code = str(data.get("code") or cls.code)
        return err

    def __str__(self) -> str:
        text = f"[{self.code}] {self.message}"
        if self.field and f"`{self.field}`" not in self.message:
            text += f" (field `{self.field}`)"
        if self.hint:
            text += f" Hint: {self.hint}"
        return text


class ConfigError(GraphtuneError):
    """A setting or argument is invalid."""

    code = "invalid_argument"


class ParameterWithoutEffect(ConfigError):
    """A parameter was given that does nothing in the chosen mode (refused rather than silently ignored)."""

    code = "parameter_without_effect"


class GraphError(GraphtuneError):
    """Something went wrong with a graph store."""

    code = "graph_error"


class GraphUnavailable(GraphError):
    """The graph store cannot be opened, reached or authenticated against."""

    code = "graph_unavailable"


class CodebaseIncomplete(GraphUnavailable):
    """A code base whose last ingest stopped before it finished (graph/unfinished.py): its graph may be
    partial, so readers refuse it until the next ingest of it, which rebuilds it whole."""

    code = "codebase_incomplete"


class QueryFailed(GraphError):
    """A graph query failed or timed out."""

    code = "query_failed"


class SchemaMismatch(GraphError):
    """The graph lacks what the label/property mapping expects."""

    code = "schema_mismatch"


class VersionNotFound(GraphError):
    """A graph version (or a dataset naming one) that this code base never recorded."""

    code = "graph_version_not_found"


class IngestError(GraphtuneError):
    """A code base could not be ingested."""

    code = "ingest_failed"


class DatasetError(GraphtuneError):
    """A dataset could not be built, read or validated."""

    code = "dataset_error"


class DatasetNotFound(DatasetError):
    """No dataset with that name or path."""

    code = "dataset_not_found"


class DatasetExists(DatasetError):
    """A dataset of that name exists and overwrite was not asked for."""

    code = "dataset_exists"


class DatasetInvalid(DatasetError):
    """A dataset file is malformed."""

    code = "dataset_invalid"


class TrainingError(GraphtuneError):
    """Training failed."""

    code = "training_failed"


class TrainingConfigError(TrainingError):
    """The training configuration cannot work (e.g. QLoRA without CUDA)."""

    code = "invalid_training_config"


class ModelNotFound(TrainingError):
    """The base model is neither a local folder with a config nor in the hub cache."""

    code = "model_not_found"


class ModelUnknown(TrainingError):
    """No finished graphtune model (adapter) of that name."""

    code = "model_unknown"


class ModelUnsupported(TrainingError):
    """The model file exists but cannot be loaded here (unsupported GGUF architecture, corrupt file)."""

    code = "model_unsupported"


class GenerationTimeout(TrainingError):
    """Generation ran past its deadline; `partial` holds the answers finished in time (None elsewhere)."""

    code = "generation_timeout"

    def __init__(self, message: str, *, partial: list[Any] | None = None, field: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, field=field, hint=hint)
        self.partial = partial or []


class OutOfMemory(TrainingError):
    """The device ran out of memory even after reducing the micro-batch."""

    code = "out_of_memory"


class ExportFailed(TrainingError):
    """The GGUF export failed; nothing was published."""

    code = "export_failed"


class JobError(GraphtuneError):
    """A job-store or runner problem."""

    code = "job_error"


class JobNotFound(JobError):
    """No job with that id."""

    code = "job_not_found"


class JobStateConflict(JobError):
    """The job is in a state that does not allow this operation."""

    code = "job_state_conflict"


class JobCancelled(JobError):
    """Raised at a safe point inside a worker after cancel (or SIGTERM) was requested."""

    code = "job_cancelled"

    def __init__(self, message: str = "the job was cancelled", *, interrupted: bool = False) -> None:
        super().__init__(message)
        self.interrupted = interrupted


class StorageError(GraphtuneError):
    """Disk full, folder not writable or a corrupt database file."""

    code = "storage_error"


def all_error_classes() -> list[type[GraphtuneError]]:
    """Every class in the hierarchy (tests check the codes are unique)."""
    seen: list[type[GraphtuneError]] = []
    stack: list[type[GraphtuneError]] = [GraphtuneError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


def shown(value: object, limit: int = 80) -> str:
    """`value` for an error message, cut to `limit` characters: a 10k-character argument is not echoed back."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def os_reason(exc: BaseException) -> str:
    """Why a path could not be used, for an error message: an OSError's strerror ("File name too long"),
    else the exception's text (a RuntimeError from an unknown ~user)."""
    return getattr(exc, "strerror", None) or str(exc)
