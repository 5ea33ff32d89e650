"""Construction and wiring in one place: settings in, a running worker out.

Nothing here does I/O at construction; `start()` creates the topics, connects the
broker and starts consuming, `stop()` drains in-flight work within the grace period
and closes every client.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import httpx
from faststream.kafka import KafkaBroker

from app.clients.anva import AnvaClient
from app.clients.elements import ElementsClient
from app.clients.portal import PortalClient, PortalDirectory
from app.limiter import ElementsLimiter
from app.metrics import Metrics
from app.pipeline.plan import DossierDefaults
from app.pipeline.sync import Pipeline
from app.retry import RetryPolicy
from app.service import SyncService
from app.settings import Settings
from app.topics import ensure_topics
from app.worker import Worker


def _http_client(base_url: str, timeout_s: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )


class Runtime:
    def __init__(self, settings: Settings, *, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        elements_settings = settings.elements
        self.limiter = ElementsLimiter(
            rate_per_s=elements_settings.rate_limit,
            daily_limit=elements_settings.daily_limit,
            margin_s=elements_settings.rate_margin_s,
        )
        self.limiter.on_wait = self.metrics.limiter_wait.observe
        self.metrics.track_budget(lambda: self.limiter.remaining_today)
        self._anva_http = _http_client(str(settings.anva.base_url), settings.anva.timeout_s)
        self._portal_http = _http_client(str(settings.portal.base_url), settings.portal.timeout_s)
        self._elements_http = _http_client(
            str(elements_settings.base_url), elements_settings.timeout_s
        )
        self.elements = ElementsClient(
            self._elements_http,
            self.limiter,
            client_id=elements_settings.client_id,
            client_secret=elements_settings.client_secret,
            organisation=elements_settings.organisation,
            webservice=elements_settings.webservice,
            scope=elements_settings.scope,
            refresh_margin_s=elements_settings.token_refresh_margin_s,
        )
        self.elements.on_response = lambda status: self.metrics.elements_requests.labels(
            str(status)
        ).inc()
        self.portal = PortalDirectory(
            PortalClient(self._portal_http, settings.portal.token),
            ttl_s=settings.portal.index_ttl_s,
        )
        self.pipeline = Pipeline(
            anva=AnvaClient(self._anva_http, settings.anva.token),
            portal=self.portal,
            elements=self.elements,
            defaults=DossierDefaults(
                kantoor_id=elements_settings.kantoor_id,
                dossierstatus_id=elements_settings.dossierstatus_id,
            ),
            contract_settings=settings.contracts,
        )
        self.service = SyncService(self.pipeline, self.limiter, retry=retry or RetryPolicy())
        self.broker = KafkaBroker(
            settings.kafka.servers,
            enable_idempotence=settings.kafka.enable_idempotence,
            acks="all",
            logger=None,
        )
        self.worker = Worker(
            self.broker, self.service, settings, self.metrics, pause_reason=self._pause_reason
        )
        self.worker.subscribe()

    def _pause_reason(self) -> str | None:
        if self.limiter.exhausted:
            return "daily_budget"
        if self.service.backing_off:
            return "upstream_outage"
        return None

    async def ready(self) -> bool:
        """Connected to Kafka and consuming: what `/readyz` reports."""
        return self.worker.consuming and await self.broker.ping(timeout=1.0)

    async def start(self) -> None:
        await ensure_topics(self.settings.kafka, self.settings.topics)
        await self.broker.start()
        self.worker.start_flow_control()

    async def stop(self) -> bool:
        """Drain, disconnect, close; False when in-flight work had to be abandoned."""
        drained = await self.worker.drain(self.settings.shutdown_grace_period_s)
        await self.broker.stop()
        for client in (self._anva_http, self._portal_http, self._elements_http):
            await client.aclose()
        return drained

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
