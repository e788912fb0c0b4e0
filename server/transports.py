"""Run the app over stdio (default) or streamable HTTP.

Nothing may print to stdout under stdio: it is the protocol channel; logs go to stderr.
Binding HTTP beyond localhost requires a bearer token, and DNS-rebinding protection
(Host/Origin allow-list) is on for every bind address.
"""

from __future__ import annotations

import logging
from typing import Literal

from graphtune.server.settings import Settings
from graphtune.tools.errors import ConfigError
from mcp.server.mcpserver import MCPServer

log = logging.getLogger(__name__)
Transport = Literal["stdio", "http"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def run(app: MCPServer, settings: Settings, transport: Transport, host: str, port: int) -> None:
    match transport:
        case "stdio":
            app.run("stdio")
        case "http":
            run_http(app, settings, host, port)


def http_app(app: MCPServer, settings: Settings, host: str, port: int):  # noqa: ANN201 (starlette app)
    """The ASGI app for HTTP, with bearer auth when a token is configured."""
    from mcp.server.transport_security import TransportSecuritySettings

    if host not in LOCAL_HOSTS and settings.http_token is None:
        raise ConfigError(
            f"refusing to serve HTTP on {host} without authentication.",
            field="host",
            hint="Set GRAPHTUNE_HTTP_TOKEN to a long random secret (clients send `Authorization: Bearer <token>`), "
            "or bind to 127.0.0.1.",
        )
    allowed_hosts = [f"{h}:{port}" for h in (LOCAL_HOSTS | {host})] + list(LOCAL_HOSTS | {host})
    allowed_hosts = [f"[{h}]:{port}" if h == "::1" else h for h in allowed_hosts]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=allowed_hosts,
        allowed_origins=[f"http://{h}:{port}" for h in (LOCAL_HOSTS | {host})],
    )
    return app.streamable_http_app(transport_security=security, host=host)


def run_http(app: MCPServer, settings: Settings, host: str, port: int) -> None:
    import uvicorn

    asgi = http_app(app, settings, host, port)
    log.info("serving MCP over streamable HTTP on http://%s:%d/mcp", host, port)
    uvicorn.run(asgi, host=host, port=port, log_level="warning", lifespan="on")
