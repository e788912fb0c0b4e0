"""Streamable HTTP: bearer auth, protected-resource metadata, DNS-rebinding checks, bind policy."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
from graphtune.server.app import create_app
from graphtune.server.settings import Settings
from graphtune.server.transports import http_app
from graphtune.tools.errors import ConfigError

TOKEN = "s3cret-token-for-tests-only-0123456789"
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    import uvicorn

    port = _free_port()
    settings = Settings(home=tmp_path, http_token=TOKEN)
    url = f"http://127.0.0.1:{port}"
    asgi = http_app(create_app(settings, http_url=url), settings, "127.0.0.1", port)
    config = uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="error", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield url
    srv.should_exit = True
    thread.join(timeout=10)


def test_missing_or_wrong_token_is_401_and_right_token_works(server) -> None:
    assert httpx.post(f"{server}/mcp", json=INIT, headers=HEADERS).status_code == 401
    wrong = httpx.post(f"{server}/mcp", json=INIT, headers={**HEADERS, "Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "www-authenticate" in wrong.headers
    ok = httpx.post(f"{server}/mcp", json=INIT, headers={**HEADERS, "Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200, ok.text
    assert TOKEN not in ok.text


def test_protected_resource_metadata_is_served(server) -> None:
    meta = httpx.get(f"{server}/.well-known/oauth-protected-resource/mcp")
    assert meta.status_code == 200 and meta.json()["resource"].startswith(server)


def test_dns_rebinding_host_is_rejected(server) -> None:
    evil = httpx.post(f"{server}/mcp", json=INIT, headers={**HEADERS, "Authorization": f"Bearer {TOKEN}",
                                                           "Host": "evil.example:80"})
    assert evil.status_code in (400, 403, 421)
    origin = httpx.post(f"{server}/mcp", json=INIT, headers={**HEADERS, "Authorization": f"Bearer {TOKEN}",
                                                             "Origin": "http://evil.example"})
    assert origin.status_code in (400, 403)


def test_binding_beyond_localhost_without_token_is_refused(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    with pytest.raises(ConfigError, match="GRAPHTUNE_HTTP_TOKEN"):
        http_app(create_app(settings), settings, "0.0.0.0", 8765)
