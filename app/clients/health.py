"""Is an upstream API down? Counted per request at the transport, for every client alike.

Sporadic 5xx answers are retried per event and must not stop the worker; an outage
is `threshold` unreachable answers (5xx, timeout, connection error) in a row from one
API, and ends with its first answer that is not. While any API is down the worker
takes no new events, so a backlog does not pile into retries against a dead API.

Because intake is paused, only the events already in flight ask the API again, and
once they have given up nothing would: `UpstreamProbe` asks for them (half-open).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import httpx
import structlog

from app.errors import SyncError

log = structlog.get_logger(__name__)

Probe = Callable[[], Awaitable[None]]


class UpstreamHealth:
    def __init__(self, *, threshold: int = 5) -> None:
        self._threshold = threshold
        self._failures_in_a_row: dict[str, int] = {}

    def record(self, api: str, *, reachable: bool) -> None:
        before = self._failures_in_a_row.get(api, 0)
        after = 0 if reachable else before + 1
        self._failures_in_a_row[api] = after
        if after == self._threshold:
            log.warning("upstream unreachable", api=api, failures_in_a_row=after)
        elif reachable and before >= self._threshold:
            log.info("upstream back", api=api)

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


class UpstreamProbe:
    """While an API is down, one cheap request to it now and then, and none otherwise.

    Each probe goes through the API's own client (and so its `HealthTransport`, and for
    Elements the shared limiter): its answer is counted like any other, and the first
    reachable one ends the outage, so intake resumes without waiting for a new event.
    The first probe comes `interval_s` after an outage starts; the wait doubles after
    each unanswered one up to `max_interval_s`, so a day-long Elements outage spends at
    most a day's seconds ÷ `max_interval_s` of the daily budget (2,880 at 30 s).
    """

    def __init__(
        self,
        health: UpstreamHealth,
        probes: Mapping[str, Probe],
        *,
        interval_s: float,
        max_interval_s: float,
    ) -> None:
        self._health = health
        self._probes = dict(probes)
        self._interval_s = interval_s
        self._max_interval_s = max(max_interval_s, interval_s)
        self._task: asyncio.Task[None] | None = None

    async def probe_down_apis(self) -> bool:
        """One probe of each API that is down, side by side; whether any is still down."""
        down = [api for api in self._health.down if api in self._probes]
        await asyncio.gather(*(self._probe(api) for api in down))
        return any(api in self._probes for api in self._health.down)

    async def _probe(self, api: str) -> None:
        try:
            await self._probes[api]()
        except SyncError as error:
            log.debug("upstream probe unanswered", api=api, error=type(error).__name__)

    async def _run(self) -> None:
        wait_s = self._interval_s
        while True:
            await asyncio.sleep(wait_s)
            try:
                still_down = await self.probe_down_apis()
            except Exception:
                log.exception("upstream probe failed")
                still_down = True
            wait_s = min(wait_s * 2, self._max_interval_s) if still_down else self._interval_s

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
