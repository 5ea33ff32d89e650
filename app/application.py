"""Construction and wiring in one place: settings in, a running worker out.

Nothing here touches the network at construction (only the TLS files are read);
`start()` checks or creates the topics, connects the broker and starts consuming,
`stop()` drains in-flight work within the grace period and closes every client.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import httpx
import structlog
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from tenacity import AsyncRetrying, retry_if_exception_type

from app import __version__
from app.clients.anva import API as ANVA
from app.clients.anva import AnvaClient
from app.clients.elements import API as ELEMENTS
from app.clients.elements import ElementsClient
from app.clients.health import HealthTransport, UpstreamHealth, UpstreamProbe
from app.clients.limiter import ElementsLimiter, today_in_amsterdam
from app.clients.portal import API as PORTAL
from app.clients.portal import PortalClient, PortalDirectory
from app.errors import TopicSetupError
from app.kafka.connection import broker_security
from app.kafka.consumer import EventConsumer
from app.kafka.flow import PauseReason
from app.kafka.publisher import FormPublisher, OutcomePublisher
from app.kafka.topics import ensure_topics
from app.metrics import Metrics
from app.pipeline.context import SyncContext
from app.pipeline.plan import DossierDefaults
from app.pipeline.prefill import Prefill
from app.retry import exponential_backoff
from app.service import SyncService
from app.settings import Settings

log = structlog.get_logger(__name__)


def _http_client(
    base_url: str, timeout_s: float, *, api: str, health: UpstreamHealth
) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        transport=HealthTransport(httpx.AsyncHTTPTransport(limits=limits), api, health),
    )


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        today: Callable[[], date] = today_in_amsterdam,
        budget_poll_s: float = 5.0,
    ) -> None:
        """`today` and `budget_poll_s` are for tests and the sandbox; production uses the defaults."""
        self.settings = settings
        self.metrics = Metrics()
        elements_settings = settings.elements
        self.limiter = ElementsLimiter(
            rate_per_s=elements_settings.rate_limit,
            daily_limit=elements_settings.daily_limit,
            margin_s=elements_settings.rate_margin_s,
            today=today,
            budget_poll_s=budget_poll_s,
        )
        self.limiter.on_wait = self.metrics.limiter_wait.observe
        self.metrics.track_budget(lambda: self.limiter.remaining_today)
        self.health = UpstreamHealth()
        self._anva_http = _http_client(
            str(settings.anva.base_url), settings.anva.timeout_s, api=ANVA, health=self.health
        )
        self._portal_http = _http_client(
            str(settings.portal.base_url),
            settings.portal.timeout_s,
            api=PORTAL,
            health=self.health,
        )
        self._elements_http = _http_client(
            str(elements_settings.base_url),
            elements_settings.timeout_s,
            api=ELEMENTS,
            health=self.health,
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
        anva_client = AnvaClient(self._anva_http, settings.anva.token)
        portal_client = PortalClient(self._portal_http, settings.portal.token)
        self.portal = PortalDirectory(portal_client, ttl_s=settings.portal.index_ttl_s)
        self.probe = UpstreamProbe(
            self.health,
            {
                ANVA: anva_client.probe,
                PORTAL: portal_client.probe,
                ELEMENTS: self.elements.probe,
            },
            interval_s=settings.retry.probe_interval_s,
            max_interval_s=settings.retry.max_backoff_s,
        )
        self.context = SyncContext(
            anva=anva_client,
            portal=self.portal,
            elements=self.elements,
            defaults=DossierDefaults(
                kantoor_id=elements_settings.kantoor_id,
                dossierstatus_id=elements_settings.dossierstatus_id,
            ),
            contracts=settings.contracts,
        )
        self.prefill = Prefill(self.context)
        self.service = SyncService(
            self.context,
            self.limiter,
            retry=settings.retry,
            max_event_bytes=settings.kafka.max_event_bytes,
        )
        self.broker = KafkaBroker(
            settings.kafka.servers,
            client_id=settings.kafka.client_id,
            security=broker_security(settings.kafka),
            enable_idempotence=settings.kafka.enable_idempotence,
            acks="all",
            allow_auto_create_topics=False,  # ensure_topics is the one place topics are made
            logger=None,
        )
        self.forms = FormPublisher(self.broker, settings.topics)
        self.consumer = EventConsumer(
            self.broker,
            self.service,
            settings,
            self.metrics,
            OutcomePublisher(self.broker, settings.topics, self.metrics, retry=settings.retry),
            external_pause_reason=self._pause_reason,
        )

    def _pause_reason(self) -> PauseReason | None:
        if self.limiter.exhausted:
            return "daily_budget"
        if self.health.down:
            return "upstream_outage"
        return None

    def asyncapi_json(self) -> str:
        """The AsyncAPI document of the topics, generated by FastStream from the wiring."""
        spec = AsyncAPI(
            self.broker,
            title="elements-sync",
            version=__version__,
            description="Keeps Faster Forward Elements in step with ANVA Hub and MijnKlantportaal.",
        )
        return spec.to_specification().to_json()

    async def ready(self) -> bool:
        """Connected to Kafka and consuming: what `/readyz` reports."""
        return self.consumer.consuming and bool(await self.broker.ping(timeout=1.0))

    async def start(self) -> None:
        await ensure_topics(self.settings.kafka, self.settings.topics)
        await self.broker.start()
        self.consumer.flow.start()
        self.probe.start()

    async def start_when_kafka_answers(self) -> None:
        """Start, retrying while Kafka is unreachable or its topics are missing (an operator
        may be creating them): the pod stays up and not ready meanwhile, saying why."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((KafkaError, OSError, TopicSetupError)),
            wait=exponential_backoff(self.settings.retry),
            before_sleep=lambda state: log.warning(
                "Kafka not ready for the worker; retrying",
                attempt=state.attempt_number,
                error=str(state.outcome.exception()) if state.outcome else None,
            ),
        ):
            with attempt:
                await self.start()

    async def stop(self) -> bool:
        """Drain, disconnect, close; False when in-flight work had to be abandoned."""
        drained = await self.consumer.drain(self.settings.shutdown_grace_period_s)
        await self.probe.stop()
        await self.broker.stop()
        for client in (self._anva_http, self._portal_http, self._elements_http):
            await client.aclose()
        return drained
