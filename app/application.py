"""Construction and wiring in one place: settings in, a running worker out.

Nothing here touches the network at construction (only the TLS files are read);
`start()` checks or creates the topics, connects the broker and starts consuming,
`stop()` hands the partitions' events over (each stops at its next step boundary, within
`KAFKA_HANDOVER_TIMEOUT_S`) and closes every client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date

import httpx
import orjson
import structlog
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from opentelemetry.trace import Tracer, TracerProvider
from pydantic import ValidationError

from app import __version__
from app.clients.anva import API as ANVA
from app.clients.anva import AnvaClient
from app.clients.elements import API as ELEMENTS
from app.clients.elements import ElementsClient
from app.clients.health import HealthTransport, UpstreamHealth, UpstreamProbe
from app.clients.limiter import ElementsLimiter, InProcessSlots, today_in_amsterdam
from app.clients.observed import ObservedTransport
from app.clients.portal import API as PORTAL
from app.clients.portal import PortalClient, PortalDirectory
from app.clients.redis_slots import RedisSlots
from app.errors import TopicSetupError
from app.kafka.connection import broker_security, producer_options
from app.kafka.consumer import EventConsumer
from app.kafka.flow import PauseReason
from app.kafka.handover import HandoverRecords
from app.kafka.publisher import FormPublisher, OutcomePublisher
from app.kafka.state import (
    DAILY_COUNT_KEY,
    DOSSIER_PREFIX,
    StateTopic,
    StateWriter,
    dossier_values,
)
from app.kafka.topics import ensure_topics
from app.metrics import Metrics
from app.pipeline.context import SyncContext
from app.pipeline.customer_plan import DossierDefaults
from app.pipeline.prefill import Prefill
from app.retry import exponential_backoff, retrying_on
from app.service import SyncService
from app.settings import ElementsSettings, PortalSettings, RetrySettings, Settings
from app.state.daily_count import DailyCountKeeper
from app.state.memory import DossierMemory
from app.state.ownership import DossierOwners
from app.state.record import RECORD_VERSION, PortalLocator
from app.state.redis_leases import RedisLeases
from app.tracing import TRACER_NAME, build_tracer_provider, shutdown_tracer_provider

log = structlog.get_logger(__name__)

LOAD_SLICE = 10_000
"""Records handed to the memory between two turns of the event loop while loading."""
SEED_SLICE = 500
"""Records read between two turns of the event loop while seeding the portal directory."""
CATCH_UP_TIMEOUT_S = 10.0
"""How long newly assigned partitions wait for the state topic to be read to its end."""


def _http_client(
    base_url: str,
    timeout_s: float,
    *,
    api: str,
    health: UpstreamHealth,
    metrics: Metrics,
    tracer: Tracer,
) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
    wire = HealthTransport(httpx.AsyncHTTPTransport(limits=limits), api, health)
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        transport=ObservedTransport(wire, api, metrics, tracer),
    )


def _slots(
    settings: ElementsSettings, metrics: Metrics, *, retry: RetrySettings
) -> RedisSlots | None:
    """Redis' shared slots when `ELEMENTS_LIMITER_REDIS_URL` is set; None: this process's own."""
    if settings.limiter_redis_url is None:
        return None
    slots = RedisSlots.from_url(
        settings.limiter_redis_url.get_secret_value(),
        rate_per_s=settings.rate_limit,
        daily_limit=settings.daily_limit,
        margin_s=settings.rate_margin_s,
        backoff=exponential_backoff(retry),
    )
    slots.on_error = lambda operation: metrics.limiter_redis_errors.labels(operation).inc()
    return slots


def _limiter(
    settings: ElementsSettings,
    metrics: Metrics,
    *,
    today: Callable[[], date],
    budget_poll_s: float,
    backfill_reserve: float,
    retry: RetrySettings,
) -> ElementsLimiter:
    limiter = ElementsLimiter(
        rate_per_s=settings.rate_limit,
        daily_limit=settings.daily_limit,
        margin_s=settings.rate_margin_s,
        today=today,
        budget_poll_s=budget_poll_s,
        backfill_reserve=backfill_reserve,
        slots=_slots(settings, metrics, retry=retry),
    )
    limiter.on_wait = metrics.limiter_wait.observe
    metrics.track_budget(
        lambda: limiter.remaining_today,
        daily_limit=settings.daily_limit,
        rate_per_s=settings.rate_limit,
    )
    return limiter


def _owners(
    settings: ElementsSettings, metrics: Metrics, limiter: ElementsLimiter, retry: RetrySettings
) -> DossierOwners:
    """With the limiter's Redis, one owner per dossier across every replica; else in process."""
    url = settings.limiter_redis_url
    leases = (
        None
        if url is None
        else RedisLeases.from_url(
            url.get_secret_value(),
            backoff=exponential_backoff(retry),
            on_error=lambda operation: metrics.limiter_redis_errors.labels(operation).inc(),
        )
    )
    return DossierOwners(leases=leases, waiting=limiter.live.stepped_aside)


def _elements_client(
    settings: ElementsSettings, http: httpx.AsyncClient, limiter: ElementsLimiter
) -> ElementsClient:
    return ElementsClient(
        http,
        limiter,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        organisation=settings.organisation,
        webservice=settings.webservice,
        scope=settings.scope,
        refresh_margin_s=settings.token_refresh_margin_s,
    )


def _portal_directory(
    settings: PortalSettings, client: PortalClient, metrics: Metrics
) -> PortalDirectory:
    directory = PortalDirectory(
        client,
        ttl_s=settings.index_ttl_s,
        refresh_pages_per_s=settings.refresh_pages_per_s,
        append_pages=settings.append_pages,
        miss_ttl_s=settings.miss_ttl_s,
    )
    directory.on_page_read = lambda purpose: metrics.portal_page_reads.labels(purpose).inc()
    return directory


def portal_locator(value: bytes) -> PortalLocator | None:
    """Where a dossier record last found its portal customer, read without validating the
    rest of the record: at start-up every record is read for it, and orjson with the locator
    alone costs a third of a full parse (`python -m app bench-state`). A value that is no
    JSON object, of another record version, or without a locator gives none. A record
    unreadable elsewhere may still give its locator: it is only where to look first in the
    portal, which the directory checks on every lookup."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or document.get("version", RECORD_VERSION) != RECORD_VERSION:
        return None
    located = document.get("portal")
    if located is None:
        return None
    try:
        return PortalLocator.model_validate(located)
    except ValidationError:
        return None


async def load_in_slices(memory: DossierMemory, dossiers: Sequence[tuple[str, bytes]]) -> None:
    """Hand the records to the memory a slice at a time, so `/healthz` and the forms are
    answered while a hundred thousand are loaded."""
    for start in range(0, len(dossiers), LOAD_SLICE):
        memory.load(dossiers[start : start + LOAD_SLICE])
        await asyncio.sleep(0)


async def seed_portal_directory(
    dossiers: Iterable[tuple[str, bytes]], portal: PortalDirectory
) -> int:
    """Tell the portal directory where the records last found each customer, a slice at a
    time, so the event loop keeps answering; returns how many customers were located."""
    located = 0
    for seen, (dossier_number, value) in enumerate(dossiers, start=1):
        if (locator := portal_locator(value)) is not None:
            portal.learn(locator.customer_id, dossier_number, locator.page)
            located += 1
        if seen % SEED_SLICE == 0:
            await asyncio.sleep(0)
    return located


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        today: Callable[[], date] = today_in_amsterdam,
        budget_poll_s: float = 5.0,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        """`today`, `budget_poll_s` and `tracer_provider` are for tests and the sandbox;
        production uses the defaults (a provider built from the `OTEL_` settings)."""
        self.settings = settings
        self.metrics = Metrics()
        self._own_tracer_provider = tracer_provider is None
        self.tracer_provider = (
            build_tracer_provider(settings.tracing) if tracer_provider is None else tracer_provider
        )
        tracer = self.tracer_provider.get_tracer(TRACER_NAME, __version__)
        self.limiter = _limiter(
            settings.elements,
            self.metrics,
            today=today,
            budget_poll_s=budget_poll_s,
            backfill_reserve=settings.backfill.daily_reserve,
            retry=settings.retry,
        )
        self.health = UpstreamHealth()
        self.metrics.track_upstream((ANVA, PORTAL, ELEMENTS), lambda: self.health.down)
        self._http = {
            api: _http_client(
                str(base_url),
                timeout_s,
                api=api,
                health=self.health,
                metrics=self.metrics,
                tracer=tracer,
            )
            for api, (base_url, timeout_s) in {
                ANVA: (settings.anva.base_url, settings.anva.timeout_s),
                PORTAL: (settings.portal.base_url, settings.portal.timeout_s),
                ELEMENTS: (settings.elements.base_url, settings.elements.timeout_s),
            }.items()
        }
        self.elements = _elements_client(settings.elements, self._http[ELEMENTS], self.limiter)
        anva_client = AnvaClient(
            self._http[ANVA],
            settings.anva.token,
            listing_min_interval_s=settings.anva.listing_min_interval_s,
        )
        portal_client = PortalClient(self._http[PORTAL], settings.portal.token)
        self.portal = _portal_directory(settings.portal, portal_client, self.metrics)
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
        self.broker = KafkaBroker(
            settings.kafka.servers,
            client_id=settings.kafka.client_id,
            security=broker_security(settings.kafka),
            **producer_options(settings.kafka),
            allow_auto_create_topics=False,  # ensure_topics is the one place topics are made
            logger=None,
        )
        self.state = StateWriter(self.broker, settings.topics.state, settings.retry)
        self.state_topic = StateTopic(settings.kafka, settings.topics.state)
        self.daily_count = DailyCountKeeper(self.state.save_daily_count)
        self.owners = _owners(settings.elements, self.metrics, self.limiter, settings.retry)
        self.memory = DossierMemory(
            max_age_s=settings.state.max_age_s,
            save=self.state.save_dossier,
            fence=self.owners.fence,
            on_save_failed=self.metrics.state_save_failures.inc,
        )
        self.context = SyncContext(
            anva=anva_client,
            portal=self.portal,
            elements=self.elements,
            defaults=DossierDefaults(
                kantoor_id=settings.elements.kantoor_id,
                dossierstatus_id=settings.elements.dossierstatus_id,
            ),
            contracts=settings.contracts,
            memory=self.memory,
            owners=self.owners,
        )
        self._seeding: asyncio.Task[None] | None = None
        self.prefill = Prefill(
            self.context, elements_timeout_s=settings.forms.prefill_elements_timeout_s
        )
        self.service = SyncService(
            self.context,
            self.limiter,
            retry=settings.retry,
            max_event_bytes=settings.kafka.max_event_bytes,
            state_writable=self.state.writable,
        )
        self.forms = FormPublisher(self.broker, settings.topics)
        self.handover_records = HandoverRecords(settings.kafka.group_id, self.state.write)
        self.consumer = EventConsumer(
            self.broker,
            self.service,
            settings,
            self.metrics,
            OutcomePublisher(self.broker, settings.topics, self.metrics, retry=settings.retry),
            external_pause_reason=self._pause_reason,
            limiter=self.limiter,
            handover_records=self.handover_records,
            tracer=tracer,
            caught_up=self._caught_up,
        )

    def _pause_reason(self) -> PauseReason | None:
        if self.limiter.unavailable:
            return "limiter_unavailable"
        if self.state.unavailable:
            return "state_unavailable"
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
        """Connected to Kafka and consuming: what `/readyz` reports. Consuming counts from
        when the consumer takes part in the group, not from when the group gave it
        partitions (see `EventConsumer.consuming`)."""
        return self.consumer.consuming and bool(await self.broker.ping(timeout=1.0))

    async def start(self) -> None:
        """Returns once the group gave the consumer its partitions; `ready()` holds earlier,
        as soon as the consumer joins (aiokafka's start waits for the whole rebalance)."""
        await ensure_topics(self.settings.kafka, self.settings.topics)
        await self.load_memory()
        await self.limiter.start()
        self.portal.start()
        try:
            await self.broker.start()
        except BaseException:
            self.consumer.left_group()
            raise
        self.consumer.flow.start()
        self.probe.start()

    async def load_memory(self) -> None:
        """Read the state topic, so the first event already starts from what the last worker
        knew."""
        began = time.monotonic()
        await self._stop_seeding()  # a start that is retried seeds again
        await self.state_topic.close()
        values = await self.state_topic.load(timeout_s=self.settings.state.load_timeout_s)
        dossiers = list(dossier_values(values))
        await load_in_slices(self.memory, dossiers)
        for key, value in values.items():
            self.handover_records.read(key, value)
        self.state_topic.follow(self._followed)
        slots = self.limiter.slots
        if isinstance(slots, InProcessSlots):  # with Redis, the count lives there
            if (saved := DailyCountKeeper.read(values.get(DAILY_COUNT_KEY))) is not None:
                slots.restore(saved.day, saved.used)
                self.daily_count.restored(saved)
            slots.on_count = self.daily_count.on_count
        log.info(
            "durable memory loaded",
            dossiers=len(self.memory),
            seconds=round(time.monotonic() - began, 3),
        )
        self._seeding = asyncio.create_task(self._seed_portal_directory(dossiers))

    async def _seed_portal_directory(self, dossiers: list[tuple[str, bytes]]) -> None:
        """In the background once the memory holds the records: the directory finds every
        customer without them too, only with more page reads."""
        began = time.monotonic()
        located = await seed_portal_directory(dossiers, self.portal)
        log.info(
            "portal directory seeded", located=located, seconds=round(time.monotonic() - began, 3)
        )

    async def _stop_seeding(self) -> None:
        if self._seeding is not None:
            self._seeding.cancel()
            await asyncio.gather(self._seeding, return_exceptions=True)
            self._seeding = None

    def _followed(self, key: str, value: bytes | None) -> None:
        if key.startswith(DOSSIER_PREFIX):
            self.memory.followed(key.removeprefix(DOSSIER_PREFIX), value)
        self.handover_records.read(key, value)

    async def _caught_up(self) -> None:
        await self.state_topic.caught_up(timeout_s=CATCH_UP_TIMEOUT_S)

    async def start_when_kafka_answers(self) -> None:
        """Start, retrying while Kafka is unreachable or its topics are missing (an operator
        may be creating them): the pod stays up and not ready meanwhile, saying why."""
        async for attempt in retrying_on(
            (KafkaError, OSError, TopicSetupError),
            wait=exponential_backoff(self.settings.retry),
            on_retry=lambda error, number: log.warning(
                "Kafka not ready for the worker; retrying", attempt=number, error=str(error)
            ),
        ):
            with attempt:
                await self.start()

    async def stop(self) -> bool:
        """Hand the partitions over, disconnect, close; False when events had to be cancelled
        at the handover's deadline."""
        drained = await self.consumer.drain()
        await self.probe.stop()
        await self.portal.stop()
        await self._stop_seeding()
        await self.daily_count.flush(timeout_s=5.0)
        await self.state_topic.close()
        await self.state.close()
        await self.broker.stop()
        await self.close_clients()
        return drained

    async def close_clients(self) -> None:
        """Close the HTTP clients: all a one-shot command that only used `context` must undo."""
        for client in self._http.values():
            await client.aclose()
        await self.limiter.close()
        await self.owners.close()
        if self._own_tracer_provider:
            await shutdown_tracer_provider(self.tracer_provider)
