"""The composition root: settings in, the pipeline out.

Every client, the limiter, the owners, the memory and the entry points are built here,
each handed what it calls at construction, nothing assigned afterwards. The worker
(`app.application.Runtime`) builds its Kafka side on top; `python -m app plan` and the
in-process core (`app.sandbox.core`) use the pipeline as it is, so a dry run and a unit
test run what the worker runs. Nothing touches the network at construction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date

import httpx
from opentelemetry.trace import NoOpTracerProvider, Tracer, TracerProvider

from app import __version__
from app.clients.anva import API as ANVA
from app.clients.anva import AnvaClient
from app.clients.elements import API as ELEMENTS
from app.clients.elements import ElementsClient
from app.clients.health import HealthTransport, UpstreamHealth, UpstreamProbe
from app.clients.limiter import ElementsLimiter, today_in_amsterdam
from app.clients.observed import ObservedTransport
from app.clients.portal import API as PORTAL
from app.clients.portal import PortalClient, PortalDirectory
from app.clients.redis_slots import RedisSlots
from app.metrics import Metrics
from app.pipeline.context import SyncContext
from app.pipeline.customer_plan import DossierDefaults
from app.pipeline.prefill import Prefill
from app.retry import exponential_backoff
from app.service import SyncService, always_writable
from app.settings import (
    AnvaSettings,
    BackfillSettings,
    ElementsSettings,
    PortalSettings,
    RetrySettings,
    Settings,
)
from app.state.memory import DossierMemory, Save, kept_in_process
from app.state.ownership import DossierOwners
from app.state.redis_leases import RedisLeases
from app.tracing import TRACER_NAME, build_tracer_provider, shutdown_tracer_provider


@dataclass(frozen=True)
class Durable:
    """Where the pipeline's memory and the day's request count outlive the process (the
    worker's state topic). Without it (`plan`, the in-process core) both stay in memory."""

    save_record: Save = kept_in_process
    save_medewerker: Save = kept_in_process
    writable: Callable[[], Awaitable[None]] = always_writable
    """Returns once records can be saved again: an event waits for it before it works."""
    count: Callable[[date, int], None] = lambda day, used: None
    """Told every new count of the day's Elements requests (kept in process only)."""


@dataclass(frozen=True)
class Pipeline:
    """One event's way from resolve to report, and what it shares with the worker around it
    (metrics, upstream health, the limiter the flow control watches)."""

    settings: Settings
    metrics: Metrics
    tracer: Tracer
    health: UpstreamHealth
    limiter: ElementsLimiter
    owners: DossierOwners
    http: Mapping[str, httpx.AsyncClient]
    portal: PortalDirectory
    probe: UpstreamProbe
    memory: DossierMemory
    context: SyncContext
    prefill: Prefill
    service: SyncService
    owned_tracer_provider: TracerProvider | None
    """The provider the pipeline built from the `OTEL_` settings, shut down by `close()`."""

    async def close(self) -> None:
        """Close the HTTP clients and the Redis connections."""
        for client in self.http.values():
            await client.aclose()
        await self.limiter.close()
        await self.owners.close()
        if self.owned_tracer_provider is not None:
            await shutdown_tracer_provider(self.owned_tracer_provider)


def build_pipeline(
    settings: Settings,
    *,
    durable: Durable | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    memory: DossierMemory | None = None,
    owners: DossierOwners | None = None,
    today: Callable[[], date] = today_in_amsterdam,
    budget_poll_s: float = 5.0,
    tracer_provider: TracerProvider | None = None,
) -> Pipeline:
    """`transports` (per API name) replace the network; `memory` and `owners` the ones the
    settings make; `today`, `budget_poll_s` and `tracer_provider` the production clock, poll
    and OTEL provider. For `plan`, the in-process core, the sandbox and tests."""
    durable = durable or Durable()
    metrics = Metrics()
    provider = tracer_provider or build_tracer_provider(settings.tracing)
    tracer = provider.get_tracer(TRACER_NAME, __version__)
    health = UpstreamHealth()
    metrics.track_upstream((ANVA, PORTAL, ELEMENTS), lambda: health.down)
    limiter = _limiter(
        settings.elements,
        backfill_reserve=settings.backfill.daily_reserve,
        retry=settings.retry,
        metrics=metrics,
        durable=durable,
        today=today,
        budget_poll_s=budget_poll_s,
    )
    http = _http_clients(settings, health, metrics, tracer, transports or {})
    anva = AnvaClient(
        http[ANVA], settings.anva.token, listing_min_interval_s=settings.anva.listing_min_interval_s
    )
    portal_client = PortalClient(http[PORTAL], settings.portal.token)
    portal = _portal_directory(settings.portal, portal_client, metrics)
    elements = _elements_client(settings.elements, http[ELEMENTS], limiter)
    owners = owners if owners is not None else _owners(settings, metrics, limiter)
    memory = (
        memory
        if memory is not None
        else DossierMemory(
            max_age_s=settings.state.max_age_s,
            save=durable.save_record,
            save_medewerker=durable.save_medewerker,
            fence=owners.fence,
            on_save_failed=metrics.state_save_failures.inc,
        )
    )
    metrics.track_memory(lambda: len(memory))
    context = SyncContext(
        anva=anva,
        portal=portal,
        elements=elements,
        defaults=DossierDefaults(
            kantoor_id=settings.elements.kantoor_id,
            dossierstatus_id=settings.elements.dossierstatus_id,
        ),
        contracts=settings.contracts,
        memory=memory,
        owners=owners,
    )
    return Pipeline(
        settings=settings,
        metrics=metrics,
        tracer=tracer,
        health=health,
        limiter=limiter,
        owners=owners,
        http=http,
        portal=portal,
        probe=UpstreamProbe(
            health,
            {ANVA: anva.probe, PORTAL: portal_client.probe, ELEMENTS: elements.probe},
            interval_s=settings.retry.probe_interval_s,
            max_interval_s=settings.retry.max_backoff_s,
        ),
        memory=memory,
        context=context,
        prefill=Prefill(context, elements_timeout_s=settings.forms.prefill_elements_timeout_s),
        service=SyncService(
            context,
            limiter,
            retry=settings.retry,
            max_event_bytes=settings.kafka.max_event_bytes,
            state_writable=durable.writable,
        ),
        owned_tracer_provider=None if tracer_provider else provider,
    )


@dataclass(frozen=True)
class ApiClients:
    """A client per API whose settings were read, built as the pipeline builds its own (the
    same transports, limiter and token handling), for `python -m app check`, which runs with
    whatever settings groups could be read and needs no pipeline around them."""

    anva: AnvaClient | None
    portal: PortalClient | None
    elements: ElementsClient | None
    limiter: ElementsLimiter | None
    http: tuple[httpx.AsyncClient, ...]

    async def close(self) -> None:
        for client in self.http:
            await client.aclose()
        if self.limiter is not None:
            await self.limiter.close()


def build_api_clients(
    *,
    anva: AnvaSettings | None,
    portal: PortalSettings | None,
    elements: ElementsSettings | None,
    retry: RetrySettings | None,
    backfill: BackfillSettings | None,
    timeout_s: float,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> ApiClients:
    """Each API's client, None where its settings are missing (Elements also needs the retry
    and backfill groups, which its limiter reads). Every request gives up after `timeout_s`,
    or the API's own timeout when that is shorter. Nothing touches the network here."""
    metrics, health = Metrics(), UpstreamHealth()
    tracer = NoOpTracerProvider().get_tracer(TRACER_NAME, __version__)
    given = transports or {}
    http: list[httpx.AsyncClient] = []

    def client(api: str, base_url: object, api_timeout_s: float) -> httpx.AsyncClient:
        made = _http_client(
            str(base_url),
            min(api_timeout_s, timeout_s),
            api=api,
            health=health,
            metrics=metrics,
            tracer=tracer,
            transport=given.get(api),
        )
        http.append(made)
        return made

    anva_client = (
        None
        if anva is None
        else AnvaClient(client(ANVA, anva.base_url, anva.timeout_s), anva.token)
    )
    portal_client = (
        None
        if portal is None
        else PortalClient(client(PORTAL, portal.base_url, portal.timeout_s), portal.token)
    )
    limiter = elements_client = None
    if elements is not None and retry is not None and backfill is not None:
        limiter = _limiter(
            elements,
            backfill_reserve=backfill.daily_reserve,
            retry=retry,
            metrics=metrics,
            durable=Durable(),
            today=today_in_amsterdam,
            budget_poll_s=5.0,
        )
        elements_client = _elements_client(
            elements, client(ELEMENTS, elements.base_url, elements.timeout_s), limiter
        )
    return ApiClients(anva_client, portal_client, elements_client, limiter, tuple(http))


def _http_clients(
    settings: Settings,
    health: UpstreamHealth,
    metrics: Metrics,
    tracer: Tracer,
    transports: Mapping[str, httpx.AsyncBaseTransport],
) -> dict[str, httpx.AsyncClient]:
    """One client per API, each with its own connection pool, timeout and health."""
    return {
        api: _http_client(
            str(base_url),
            timeout_s,
            api=api,
            health=health,
            metrics=metrics,
            tracer=tracer,
            transport=transports.get(api),
        )
        for api, (base_url, timeout_s) in {
            ANVA: (settings.anva.base_url, settings.anva.timeout_s),
            PORTAL: (settings.portal.base_url, settings.portal.timeout_s),
            ELEMENTS: (settings.elements.base_url, settings.elements.timeout_s),
        }.items()
    }


def _portal_directory(
    settings: PortalSettings, client: PortalClient, metrics: Metrics
) -> PortalDirectory:
    return PortalDirectory.from_client(
        client,
        ttl_s=settings.index_ttl_s,
        refresh_pages_per_s=settings.refresh_pages_per_s,
        append_pages=settings.append_pages,
        miss_ttl_s=settings.miss_ttl_s,
        on_page_read=lambda purpose: metrics.portal_page_reads.labels(purpose).inc(),
    )


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


def _http_client(
    base_url: str,
    timeout_s: float,
    *,
    api: str,
    health: UpstreamHealth,
    metrics: Metrics,
    tracer: Tracer,
    transport: httpx.AsyncBaseTransport | None,
) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
    wire = HealthTransport(transport or httpx.AsyncHTTPTransport(limits=limits), api, health)
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        transport=ObservedTransport(wire, api, metrics, tracer),
    )


def _limiter(
    elements: ElementsSettings,
    *,
    backfill_reserve: float,
    retry: RetrySettings,
    metrics: Metrics,
    durable: Durable,
    today: Callable[[], date],
    budget_poll_s: float,
) -> ElementsLimiter:
    """Redis' shared slots when `ELEMENTS_LIMITER_REDIS_URL` is set, else this process's own."""
    url = elements.limiter_redis_url
    limiter = ElementsLimiter(
        rate_per_s=elements.rate_limit,
        daily_limit=elements.daily_limit,
        margin_s=elements.rate_margin_s,
        today=today,
        budget_poll_s=budget_poll_s,
        backfill_reserve=backfill_reserve,
        slots=None
        if url is None
        else RedisSlots.from_url(
            url.get_secret_value(),
            rate_per_s=elements.rate_limit,
            daily_limit=elements.daily_limit,
            margin_s=elements.rate_margin_s,
            backoff=exponential_backoff(retry),
            on_error=lambda operation: metrics.limiter_redis_errors.labels(operation).inc(),
        ),
        on_count=durable.count,
        on_wait=metrics.limiter_wait.observe,
    )
    metrics.track_budget(
        lambda: limiter.remaining_today,
        daily_limit=elements.daily_limit,
        rate_per_s=elements.rate_limit,
    )
    return limiter


def _owners(settings: Settings, metrics: Metrics, limiter: ElementsLimiter) -> DossierOwners:
    """With the limiter's Redis, one owner per dossier across every replica; else in process."""
    url = settings.elements.limiter_redis_url
    leases = (
        None
        if url is None
        else RedisLeases.from_url(
            url.get_secret_value(),
            backoff=exponential_backoff(settings.retry),
            on_error=lambda operation: metrics.limiter_redis_errors.labels(operation).inc(),
        )
    )
    return DossierOwners(leases=leases, waiting=limiter.live.stepped_aside)
