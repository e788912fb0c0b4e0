"""Resource subscriptions: clients hear when a job changes state or a model is promoted.

Jobs change state in worker processes, not in the server, so the server notices by polling
the job store (`JobStore.changes_since`: new state events, plus a fingerprint of the model
registry and aliases: two indexed queries, every POLL_INTERVAL_S) and tells its clients:

- 2025-11-25 handshake clients: `resources/subscribe` (MCPServer does not serve it, so the
  handler is registered on its lowlevel server, which then advertises `resources.subscribe`)
  gets `notifications/resources/updated` for that URI on the subscribing session;
- 2026-07-28 clients: `subscriptions/listen` with the URI in `resource_subscriptions` (served
  by MCPServer from the bus we hand it) gets the same update on its listen stream.

URIs: `graphtune://jobs/{job_id}` (any state change of that job) and `graphtune://models`
(a model registered, evaluated, deleted, or an alias moved). Polling the resources or
get_training_status keeps working.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import anyio
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated
from mcp.types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

log = logging.getLogger(__name__)
POLL_INTERVAL_S = 0.5
MODELS_URI = "graphtune://models"


def job_uri(job_id: str) -> str:
    return f"graphtune://jobs/{job_id}"


class ResourceWatcher:
    """Per app: the legacy subscriptions of each session, the listen bus, and the poll loop."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.bus = InMemorySubscriptionBus()
        self._sessions: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()  # connection -> URIs
        self._last_event, self._models = store.changes_since(None)[0], store.registry_fingerprint()
        self._lock: anyio.Lock | None = None  # made in the event loop, by the first run()

    def install(self, app: Any) -> None:
        """Serve resources/subscribe and resources/unsubscribe on the app's lowlevel server."""
        lowlevel = app._lowlevel_server  # MCPServer has no public hook for these two methods
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, self._subscribe)
        lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, self._unsubscribe)

    @staticmethod
    def _connection(ctx: Any) -> Any:
        """The client connection: a ServerSession lives for one request, its connection for the session."""
        return ctx.session._connection  # no public accessor in mcp 2.3

    async def _subscribe(self, ctx: Any, params: SubscribeRequestParams) -> EmptyResult:
        self._sessions.setdefault(self._connection(ctx), set()).add(str(params.uri))
        return EmptyResult()

    async def _unsubscribe(self, ctx: Any, params: UnsubscribeRequestParams) -> EmptyResult:
        self._sessions.get(self._connection(ctx), set()).discard(str(params.uri))
        return EmptyResult()

    def poll(self) -> list[str]:
        """URIs changed since the last poll (blocking: run it in a thread)."""
        self._last_event, jobs = self.store.changes_since(self._last_event)
        uris = [job_uri(job_id) for job_id in dict.fromkeys(jobs)]
        models = self.store.registry_fingerprint()
        if models != self._models:
            self._models = models
            uris.append(MODELS_URI)
        return uris

    async def notify(self, uris: list[str]) -> None:
        for uri in uris:
            await self.bus.publish(ResourceUpdated(uri=uri))
            for connection, wanted in list(self._sessions.items()):
                if uri not in wanted:
                    continue
                try:
                    await connection.send_resource_updated(uri)
                except Exception:  # a closed connection: forget it, the others still hear
                    log.debug("dropping subscriptions of a closed connection", exc_info=True)
                    self._sessions.pop(connection, None)

    async def run(self) -> None:
        """Poll and notify until cancelled. Each connection's lifespan may run this (in-memory
        clients do); the lock makes one round at a time, so every change is announced once."""
        if self._lock is None:
            self._lock = anyio.Lock()
        while True:
            try:
                async with self._lock:
                    uris = await anyio.to_thread.run_sync(self.poll)
                    if uris:
                        await self.notify(uris)
            except Exception:  # a locked database now is fine next round
                log.exception("resource watch round failed")
            await anyio.sleep(POLL_INTERVAL_S)
