"""Resource subscriptions (issue 9 part 5): a subscribed client hears when a job changes state
or a model is promoted, in memory, over a real stdio subprocess and over streamable HTTP, with
the handshake-era `resources/subscribe` and the 2026-07-28 `subscriptions/listen`."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from graphtune.server.app import create_app
from graphtune.server.job_store import JobStatus
from graphtune.server.services import Services
from graphtune.server.settings import Settings
from mcp import types

pytestmark = pytest.mark.anyio


class Updates:
    """A message handler that records resources/updated notifications."""

    def __init__(self) -> None:
        self.uris: list[str] = []

    async def __call__(self, message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            self.uris.append(str(message.params.uri))

    async def wait_for(self, uri: str, timeout: float = 30) -> None:
        with anyio.fail_after(timeout):
            while uri not in self.uris:
                await anyio.sleep(0.05)


async def _job_ends_and_is_heard(client: Any, updates: Updates, store: Any) -> None:
    assert client.server_capabilities.resources.subscribe is True
    job = store.create("sleep", {"steps": 1, "step_s": 0.01}, heavy=False)  # queued, as a worker would see it
    uri = f"graphtune://jobs/{job.id}"
    await client.subscribe_resource(uri)
    read = await client.read_resource(uri)
    assert '"status": "queued"' in read.contents[0].text
    store.finish(job.id, JobStatus.CANCELLED)  # as another process (a worker, the CLI) would
    await updates.wait_for(uri)


async def test_legacy_subscribe_hears_job_state_and_promotion_in_memory(settings: Settings, services: Services) -> None:
    from mcp.client import Client
    from test_model_registry import fake_model

    updates = Updates()
    async with Client(create_app(settings, services), mode="legacy", message_handler=updates) as client:
        await _job_ends_and_is_heard(client, updates, services.store)
        await client.subscribe_resource("graphtune://models")
        fake_model(settings, "m1")
        promoted = await client.call_tool("promote_model", {"model_name": "m1"})
        assert not promoted.is_error, promoted.content[0].text
        await updates.wait_for("graphtune://models")
        polled = await client.call_tool("list_models", {})  # polling keeps working
        assert polled.structured_content["models"][0]["aliases"] == ["current"]
        await client.unsubscribe_resource("graphtune://models")


async def test_listen_stream_hears_a_real_job_end_in_memory(settings: Settings, services: Services) -> None:
    from mcp.client import Client
    from mcp.client.subscriptions import ResourceUpdated

    async with Client(create_app(settings, services)) as client:  # 2026-07-28: subscriptions/listen
        job = services.store.create("sleep", {"steps": 2, "step_s": 0.05}, heavy=False)
        uri = f"graphtune://jobs/{job.id}"
        async with client.listen(resource_subscriptions=[uri]) as sub:
            services.runner.dispatch()  # a real worker process runs it
            seen = []
            with anyio.fail_after(60):
                async for event in sub:
                    assert isinstance(event, ResourceUpdated) and event.uri == uri
                    seen.append(services.store.get(job.id).status.value)
                    if seen[-1] == "succeeded":
                        break


def _stdio_params(home: Path) -> Any:
    from mcp.client.stdio import StdioServerParameters

    env = {**os.environ, "GRAPHTUNE_HOME": str(home), "GRAPHTUNE_ENABLE_TEST_JOB_KINDS": "1", "HF_HUB_OFFLINE": "1"}
    return StdioServerParameters(command=sys.executable, args=["-m", "graphtune.server", "serve"], env=env)


async def test_stdio_subprocess_subscriber_hears_a_job_end(tmp_path: Path) -> None:
    from mcp.client import Client

    home = tmp_path / "home"
    services = Services.open(Settings(home=home, enable_test_job_kinds=True))
    updates = Updates()
    try:
        async with Client(_stdio_params(home), mode="legacy", message_handler=updates) as client:
            await _job_ends_and_is_heard(client, updates, services.store)
    finally:
        services.store.close()


@pytest.fixture
def http_server(tmp_path: Path):
    import uvicorn
    from graphtune.server.transports import http_app
    from test_http_security import _free_port

    port = _free_port()
    settings = Settings(home=tmp_path / "home", enable_test_job_kinds=True)
    asgi = http_app(create_app(settings), settings, "127.0.0.1", port)
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    services = Services.open(settings)
    yield f"http://127.0.0.1:{port}/mcp", services
    services.store.close()
    server.should_exit = True
    thread.join(timeout=10)


async def test_http_subscriber_hears_a_job_end(http_server) -> None:
    from mcp.client import Client

    url, services = http_server
    updates = Updates()
    async with Client(url, mode="legacy", message_handler=updates) as client:
        await _job_ends_and_is_heard(client, updates, services.store)


async def test_http_listen_stream_hears_a_job_end(http_server) -> None:
    from mcp.client import Client

    url, services = http_server
    async with Client(url) as client:
        job = services.store.create("sleep", {}, heavy=False)
        uri = f"graphtune://jobs/{job.id}"
        async with client.listen(resource_subscriptions=[uri]) as sub:
            services.store.request_cancel(job.id)
            with anyio.fail_after(30):
                event = await sub.__anext__()
        assert event.uri == uri
