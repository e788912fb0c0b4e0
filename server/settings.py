"""The one settings module: every knob, its env var, its default and why.

Precedence is CLI flag > environment variable > default, resolved once by `load_settings`.
graphtune settings use the `GRAPHTUNE_` prefix; the Neo4j connection keeps the standard
`NEO4J_*` names (and accepts `NEO4J_USER` as an alias of `NEO4J_USERNAME`, which older
tools and the original design used).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GraphBackend = Literal["embedded", "neo4j"]


def default_home() -> Path:
    """The data dir when GRAPHTUNE_HOME / --home are not given: the user data dir of this platform."""
    import platformdirs

    return Path(platformdirs.user_data_dir("graphtune", appauthor=False))


class Settings(BaseSettings):
    """Validated configuration for the server, the CLI and the job worker."""

    model_config = SettingsConfigDict(env_prefix="GRAPHTUNE_", extra="ignore", populate_by_name=True)

    home: Path = Field(
        default_factory=lambda: default_home(),
        description="Data dir holding datasets/, models/, graph/ and graphtune.sqlite. Defaults to the "
        "platform's user data dir (platformdirs: ~/.local/share/graphtune on Linux, ~/Library/Application "
        "Support/graphtune on macOS, %LOCALAPPDATA%\\graphtune on Windows), never the current folder: an MCP "
        "client may start the server anywhere.",
    )
    graph_backend: GraphBackend = Field(
        default="embedded", description="Where graphs are read from by default: embedded LadybugDB or neo4j."
    )
    max_concurrent_jobs: int = Field(default=4, ge=1, le=64, description="Jobs of all kinds running at once.")
    max_concurrent_training_jobs: int = Field(
        default=1, ge=1, le=16, description="Heavy (GPU) jobs running at once; the rest wait `queued`."
    )
    heartbeat_interval_s: float = Field(default=2.0, gt=0, description="How often a worker proves it is alive.")
    stale_after_s: float = Field(
        default=30.0, gt=0, description="A running job whose heartbeat is older than this is `interrupted`."
    )
    cancel_grace_s: float = Field(
        default=60.0, ge=0, description="After a cancel request, how long a job may take to stop by itself."
    )
    graph_lock_wait_s: float = Field(
        default=120.0, ge=0, le=3600,
        description="How long a job retries opening the embedded graph while a process outside graphtune's "
        "jobs (a notebook, an older server) holds its lock, before failing with graph_unavailable.",
    )
    neo4j_uri: str | None = Field(default=None, validation_alias=AliasChoices("NEO4J_URI", "neo4j_uri"))
    neo4j_username: str = Field(
        default="neo4j", validation_alias=AliasChoices("NEO4J_USERNAME", "NEO4J_USER", "neo4j_username")
    )
    neo4j_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("NEO4J_PASSWORD", "neo4j_password")
    )
    neo4j_database: str = Field(default="neo4j", validation_alias=AliasChoices("NEO4J_DATABASE", "neo4j_database"))
    neo4j_timeout_s: float = Field(default=5.0, gt=0, le=600, description="Connect and query timeout for Neo4j.")
    read_only: bool = Field(default=False, description="Register only read-only tools (no jobs, no writes).")
    http_token: SecretStr | None = Field(
        default=None, description="Bearer token required by the HTTP transport (mandatory beyond localhost)."
    )
    base_models_dir: Path | None = Field(
        default=None, description="Base models graphtune manages: converted GGUF files (cache) and any model folders or "
        ".gguf files you put there. Default <home>/base_models; share one across data dirs to convert a GGUF once.",
    )
    llama_quantize: Path | None = Field(
        default=None, description="llama.cpp's `llama-quantize` binary for k-quant GGUF exports (q4_k_m ...); "
        "default: the one on PATH.",
    )
    warm_worker: bool = Field(
        default=True, description="While the MCP server runs, keep one job worker waiting with torch, transformers "
        "and peft already imported once a training job has run, so later training jobs skip those imports (seconds "
        "each); it holds a few hundred MB of memory while it waits. False: every job starts a fresh process.",
    )
    enable_test_job_kinds: bool = Field(
        default=False, description="Register the `sleep` job kind used by the test-suite; never needed by users."
    )

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def base_models_path(self) -> Path:
        return (self.base_models_dir or self.home / "base_models").expanduser().resolve()

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def graph_dir(self) -> Path:
        return self.home / ".graphtune" / "graph"

    @property
    def db_path(self) -> Path:
        return self.home / ".graphtune" / "graphtune.sqlite"

    @property
    def work_dir(self) -> Path:
        """Scratch space for jobs (checkpoints, temp outputs); same filesystem as outputs so renames are atomic."""
        return self.home / ".graphtune" / "work"

    def ensure_dirs(self) -> None:
        for folder in (self.datasets_dir, self.models_dir, self.db_path.parent, self.work_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def to_worker_env(self) -> dict[str, str]:
        """Environment that reproduces these settings in a worker process (flags included)."""
        env = {"GRAPHTUNE_HOME": str(self.home), "GRAPHTUNE_GRAPH_BACKEND": self.graph_backend}
        env["GRAPHTUNE_ENABLE_TEST_JOB_KINDS"] = "1" if self.enable_test_job_kinds else "0"
        env["GRAPHTUNE_HEARTBEAT_INTERVAL_S"] = str(self.heartbeat_interval_s)
        env["GRAPHTUNE_STALE_AFTER_S"] = str(self.stale_after_s)
        env["GRAPHTUNE_GRAPH_LOCK_WAIT_S"] = str(self.graph_lock_wait_s)
        env["GRAPHTUNE_MAX_CONCURRENT_JOBS"] = str(self.max_concurrent_jobs)
        env["GRAPHTUNE_MAX_CONCURRENT_TRAINING_JOBS"] = str(self.max_concurrent_training_jobs)
        env["NEO4J_DATABASE"] = self.neo4j_database
        env["NEO4J_USERNAME"] = self.neo4j_username
        if self.base_models_dir is not None:
            env["GRAPHTUNE_BASE_MODELS_DIR"] = str(self.base_models_dir)
        if self.neo4j_uri:
            env["NEO4J_URI"] = self.neo4j_uri
        if self.neo4j_password is not None:
            env["NEO4J_PASSWORD"] = self.neo4j_password.get_secret_value()
        return env


def load_settings(**flags: Any) -> Settings:
    """Build settings with flags (None means 'not given') overriding env vars and defaults."""
    given = {key: value for key, value in flags.items() if value is not None}
    return Settings(**given)
