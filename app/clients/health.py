"""Is an upstream API down? Counted per request at the transport, for every client alike.

Sporadic 5xx answers are retried per event and must not stop the worker; an outage
is `threshold` unreachable answers (5xx, timeout, connection error) in a row from one
API, and ends with its first answer that is not. While any API is down the worker
takes no new events, so a backlog does not pile into retries against a dead API.
"""

from __future__ import annotations

import httpx


class UpstreamHealth:
    def __init__(self, *, threshold: int = 5) -> None:
        self._threshold = threshold
        self._failures_in_a_row: dict[str, int] = {}

    def record(self, api: str, *, reachable: bool) -> None:
        self._failures_in_a_row[api] = 0 if reachable else self._failures_in_a_row.get(api, 0) + 1

    @property
    def down(self) -> list[str]:
        return sorted(api for api, n in self._failures_in_a_row.items() if n >= self._threshold)


class HealthTransport(httpx.AsyncBaseTransport):
    """Wraps a transport and reports each answer of `api` to `health`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, api: str, health: UpstreamHealth) -> None:
        self._inner = inner
        self._api = api
        self._health = health

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError:
            self._health.record(self._api, reachable=False)
            raise
        self._health.record(self._api, reachable=response.status_code < 500)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
