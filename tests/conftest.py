"""Shared fixtures: an isolated data dir per test, settings, services, an in-memory MCP client."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator, Callable
import json
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
for _name in list(os.environ):
    if _name.startswith(("GRAPHTUNE_", "NEO4J_")):
        del os.environ[_name]

from graphtune.server.job_store import JobStore  # noqa: E402
from graphtune.server.services import Services  # noqa: E402
from graphtune.server.settings import Settings  # noqa: E402


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # warm_worker off: a spare importing torch in the background would slow the other tests
    # (tests/integration/jobs/test_warm_worker.py turns it on)
    return Settings(home=tmp_path / "home", enable_test_job_kinds=True, heartbeat_interval_s=0.5,
                    stale_after_s=5.0, cancel_grace_s=10.0, warm_worker=False)


@pytest.fixture
def email_graph(settings: Settings) -> Settings:
    """Settings whose embedded graph holds the stdlib `email` package (a real code base)."""
    from graphtune.tools.graph.ingest import IngestParams, run_ingest

    settings.ensure_dirs()
    run_ingest(IngestParams(package="email"), settings)
    return settings


@pytest.fixture
def services(settings: Settings) -> Services:
    services = Services.open(settings)
    yield services
    services.store.close()


@pytest.fixture
def job_store(tmp_path: Path) -> JobStore:
    store = JobStore(tmp_path / "jobs.sqlite")
    yield store
    store.close()


@pytest.fixture
async def client(settings: Settings, services: Services) -> AsyncIterator[Any]:
    from graphtune.server.app import create_app
    from mcp.client import Client

    app = create_app(settings, services)
    async with Client(app) as connected:
        yield connected


class FakeNeo4jResult:
    """An async Neo4j result of plain rows (records with `.data()`), for the tests' stand-in drivers."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def consume(self) -> None:
        return None

    def __aiter__(self):  # noqa: ANN204
        async def gen():  # noqa: ANN202
            for row in self.rows:
                yield type("Record", (), {"data": lambda self, row=row: row})()
        return gen()


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll until predicate() is truthy; fail the test with a clear message on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def wait_final(store: JobStore, job_id: str, timeout: float = 120.0) -> Any:
    return wait_for(lambda: (j := store.get(job_id)).status.is_final and j, timeout)


PYTHON = sys.executable


# --- a tiny config-built model and a memorization dataset (training tests) ---

FACTS = [("What does `pkg.add` return?", "It returns the sum of its two arguments."),
         ("Which class does `pkg.Cat` inherit from?", "`pkg.Cat` inherits from `pkg.Animal`."),
         ("Where is `pkg.load` defined?", "`pkg.load` is defined in `pkg/io.py`."),
         ("List the methods of class `pkg.Store`.", "Class `pkg.Store` defines `get`, `put` and `close`."),
         ("What calls `pkg.parse`?", "`pkg.parse` is called by `pkg.load`."),
         ("Explain `pkg.Animal.speak`.", "It returns the sound the animal makes as a string.")]


def _chat(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [t for pair in FACTS for t in pair] * 20
    from tiny_model import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-llama", texts, vocab_size=400, hidden=64)


@pytest.fixture
def memo_dataset(services: Services) -> str:
    folder = services.settings.datasets_dir / "memo"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(_chat(q, a)) + "\n" for q, a in FACTS))
    (folder / "eval.jsonl").write_text("".join(json.dumps(_chat(q, a)) + "\n" for q, a in FACTS[:2]))
    (folder / "metadata.json").write_text(json.dumps({"name": "memo", "created_at": "2026-01-01T00:00:00Z"}))
    return "memo"
