"""Everything the pipeline talks to, on this machine: broker, three API simulators, a worker.

The demo, the benchmark and the end-to-end tests all run on a `Sandbox`, so they
exercise the same wiring as production (`Runtime`) against real sockets.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry.trace import TracerProvider
from pydantic import SecretStr

from app.application import Runtime
from app.clients.limiter import today_in_amsterdam
from app.events import EventType, ResultEvent, input_event_bytes
from app.kafka.connection import client_options, producer_options
from app.sandbox.broker import EmbeddedBroker
from app.sandbox.simulators.anva import AnvaSimulator
from app.sandbox.simulators.elements import ElementsSimulator
from app.sandbox.simulators.portal import PortalSimulator
from app.sandbox.tenant import DOSSIERSTATUS_ID, KANTOOR_ID, sandbox_contracts
from app.sandbox.tls import BrokerTls, Certificates, issue_certificates
from app.settings import (
    AnvaSettings,
    ElementsSettings,
    FormsSettings,
    KafkaSettings,
    PortalSettings,
    RetrySettings,
    Settings,
    TopicSettings,
)
from app.web.routes import http_app
from app.web.server import serve

CLOUDEVENTS_PRODUCER_HEADERS: tuple[tuple[str, bytes], ...] = (
    ("content-type", b"application/cloudevents+json; charset=UTF-8"),
    ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
)
"""What a CloudEvents SDK producer in structured mode sets, plus W3C trace context."""
MAX_TEST_MESSAGE_BYTES = 8 * 1024 * 1024
"""Upstream producers may be configured for larger messages than ours: tests send such."""
ANVA_TOKEN = "anva-sandbox-token"
PORTAL_TOKEN = "portal-sandbox-token"
ELEMENTS_CLIENT_ID = "elements-sync"
ELEMENTS_SECRET = "elements-sandbox-secret"
ELEMENTS_ORGANISATION = "4242"
KafkaTls = Literal["server", "mutual"]


def sandbox_kafka(
    bootstrap_servers: str,
    *,
    ca_file: Path | None = None,
    client_certificate: tuple[Path, Path] | None = None,
) -> KafkaSettings:
    """How the sandbox connects: TLS when given a CA. Every security field is explicit, so
    no `KAFKA_` variable of the shell that runs the demo changes it.

    Producers send one record per batch: the embedded broker (tansu 0.6) answers a
    partition's end offset (`ListOffsets` latest) with its last batch's first offset + 1,
    so the records after the first in a batch would lie beyond every reader's end —
    a redrive or a state load would pass them over."""
    cert_file, key_file = client_certificate or (None, None)
    return KafkaSettings(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=False,
        max_batch_bytes=1,
        security_protocol="PLAINTEXT" if ca_file is None else "SSL",
        sasl_username=None,
        sasl_password=None,
        ssl_ca_file=ca_file,
        ssl_cert_file=cert_file,
        ssl_key_file=key_file,
    )


@dataclass
class SandboxOptions:
    rate_limit: int = 5
    daily_limit: int = 100_000
    elements_daily_limit: int | None = None
    """Elements' own daily limit when it should differ from the worker's."""
    topic_partitions: int = 4
    max_in_flight: int = 64
    portal_per_page: int = 15
    token_ttl_s: float = 3600.0
    retry: RetrySettings = field(
        default_factory=lambda: RetrySettings(initial_backoff_s=0.2, max_backoff_s=2.0)
    )
    secrets: dict[str, str] = field(default_factory=dict)
    today: Callable[[], date] = today_in_amsterdam
    tracer_provider: TracerProvider | None = None
    """The worker's, e.g. one with an in-memory exporter; None builds it from the settings."""
    kafka_tls: KafkaTls | None = None
    """A broker that speaks only TLS ("mutual": it also requires a client certificate)."""


class Sandbox:
    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        secrets = self.options.secrets
        self.anva_token = secrets.get("anva", ANVA_TOKEN)
        self.portal_token = secrets.get("portal", PORTAL_TOKEN)
        self.elements_secret = secrets.get("elements", ELEMENTS_SECRET)
        self.anva = AnvaSimulator(token=self.anva_token)
        self.portal = PortalSimulator(
            token=self.portal_token, per_page=self.options.portal_per_page
        )
        self.elements = ElementsSimulator(
            client_id=ELEMENTS_CLIENT_ID,
            client_secret=self.elements_secret,
            organisation=ELEMENTS_ORGANISATION,
            rate_limit=self.options.rate_limit,
            daily_limit=self.options.elements_daily_limit or self.options.daily_limit,
            token_ttl_s=self.options.token_ttl_s,
            today=self.options.today,
        )
        suffix = uuid.uuid4().hex[:8]
        self.topics = TopicSettings(
            customer_events=f"customer-events-{suffix}",
            contract_events=f"contract-events-{suffix}",
            form_submissions=f"form-submissions-{suffix}",
            results=f"sync-results-{suffix}",
            dead_letter=f"sync-dead-letter-{suffix}",
            backfill=f"customer-backfill-{suffix}",
            state=f"elements-sync-state-{suffix}",
        )
        self.group_id = f"elements-sync-{suffix}"
        self.kafka = sandbox_kafka("")
        """How this sandbox's clients, and its workers, connect to the broker."""
        self.certificates: Certificates | None = None
        self.broker: EmbeddedBroker | None = None
        self.urls: dict[str, str] = {}
        self.runtime: Runtime | None = None
        self._stack = AsyncExitStack()
        self._http = AsyncExitStack()
        self._producer: AIOKafkaProducer | None = None

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka.bootstrap_servers

    async def start(self, *, bootstrap_servers: str | None = None) -> None:
        """Start the simulators, and the embedded broker unless one is named."""
        if self.options.kafka_tls is not None:
            if bootstrap_servers is not None:
                raise ValueError("a TLS sandbox runs its own embedded broker")
            self.kafka = await self._start_tls_broker(self.options.kafka_tls)
        else:
            if bootstrap_servers is None:
                self.broker = EmbeddedBroker()
                await self._stack.enter_async_context(self.broker)
                bootstrap_servers = self.broker.bootstrap_servers
            self.kafka = sandbox_kafka(bootstrap_servers)
        for name, sim in (
            ("anva", self.anva),
            ("portal", self.portal),
            ("elements", self.elements),
        ):
            self.urls[name] = await self._stack.enter_async_context(serve(sim.app))
        self._producer = AIOKafkaProducer(
            **client_options(self.kafka),
            **producer_options(self.kafka),
            max_request_size=MAX_TEST_MESSAGE_BYTES,
        )
        await self._producer.start()
        self._stack.push_async_callback(self._producer.stop)

    async def _start_tls_broker(self, tls: KafkaTls) -> KafkaSettings:
        """A broker behind a TLS terminator, with a fresh CA that the returned settings trust."""
        directory = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
        certificates = await asyncio.to_thread(issue_certificates, directory)
        mutual = tls == "mutual"
        self.certificates = certificates
        self.broker = EmbeddedBroker(
            tls=BrokerTls(
                certificates.broker_cert_file,
                certificates.broker_key_file,
                client_ca_file=certificates.ca_file if mutual else None,
            )
        )
        await self._stack.enter_async_context(self.broker)
        return sandbox_kafka(
            self.broker.bootstrap_servers,
            ca_file=certificates.ca_file,
            client_certificate=(
                (certificates.client_cert_file, certificates.client_key_file) if mutual else None
            ),
        )

    def settings(self, **overrides: Any) -> Settings:
        """Settings pointing a worker at this sandbox (what the environment would say in production)."""
        return Settings(
            kafka=self.kafka.model_copy(
                update={
                    "group_id": self.group_id,
                    "enable_idempotence": False,
                    "session_timeout_ms": 1000,
                    "heartbeat_interval_ms": 300,
                    "topic_partitions": self.options.topic_partitions,
                    "max_in_flight": self.options.max_in_flight,
                }
            ),
            topics=self.topics,
            anva=AnvaSettings(
                base_url=f"{self.urls['anva']}/api", token=SecretStr(self.anva_token)
            ),
            portal=PortalSettings(
                base_url=f"{self.urls['portal']}/v1", token=SecretStr(self.portal_token)
            ),
            elements=ElementsSettings(
                base_url=self.urls["elements"],
                client_id=ELEMENTS_CLIENT_ID,
                client_secret=SecretStr(self.elements_secret),
                organisation=ELEMENTS_ORGANISATION,
                kantoor_id=KANTOOR_ID,
                dossierstatus_id=DOSSIERSTATUS_ID,
                rate_limit=self.options.rate_limit,
                daily_limit=self.options.daily_limit,
            ),
            contracts=sandbox_contracts(),
            retry=self.options.retry,
            forms=FormsSettings(allow_anonymous=True),
            http_port=0,
            shutdown_grace_period_s=10.0,
        ).model_copy(update=overrides)

    async def start_worker(self, **overrides: Any) -> Runtime:
        """Start a worker on this sandbox, with its HTTP side at `urls["worker"]`."""
        self.runtime = Runtime(
            self.settings(**overrides),
            today=self.options.today,
            budget_poll_s=0.2,
            tracer_provider=self.options.tracer_provider,
        )
        await self.runtime.start()
        self._http = AsyncExitStack()
        self.urls["worker"] = await self._http.enter_async_context(serve(http_app(self.runtime)))
        return self.runtime

    async def stop_worker(self) -> None:
        if self.runtime is not None:
            await self._http.aclose()
            await self.runtime.stop()
            self.runtime = None

    async def publish_raw(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes | None,
        *,
        headers: Sequence[tuple[str, bytes | None]] = (),
    ) -> None:
        """Publish bytes as any producer might: any key, value and headers."""
        assert self._producer is not None, "start the sandbox first"
        await self._producer.send_and_wait(
            topic,
            value,
            key=key.encode() if isinstance(key, str) else key,
            headers=list(headers),
        )

    async def publish(
        self, event_type: EventType, data: dict[str, Any], *, key: str, event_id: str | None = None
    ) -> str:
        """Publish a CloudEvent as an upstream CloudEvents producer does, headers included."""
        topic = {
            "customer.changed": self.topics.customer_events,
            "contract.changed": self.topics.contract_events,
            "form.submitted": self.topics.form_submissions,
        }[event_type]
        event_id = event_id or str(uuid.uuid4())
        await self.publish_raw(
            topic,
            key,
            input_event_bytes(event_type, data, event_id=event_id),
            headers=CLOUDEVENTS_PRODUCER_HEADERS,
        )
        return event_id

    @asynccontextmanager
    async def admin(self) -> AsyncIterator[AIOKafkaAdminClient]:
        """An admin client on the sandbox's broker, e.g. to create topics as an operator would."""
        admin = AIOKafkaAdminClient(**client_options(self.kafka))
        await admin.start()
        try:
            yield admin
        finally:
            await admin.close()

    @asynccontextmanager
    async def reader(self, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
        consumer = AIOKafkaConsumer(
            topic,
            **client_options(self.kafka),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            yield consumer
        finally:
            await consumer.stop()

    async def read(self, topic: str, count: int, *, timeout_s: float = 60.0) -> list[Any]:
        """The first `count` records of `topic` (raises TimeoutError when fewer arrive)."""
        records: list[Any] = []
        async with self.reader(topic) as consumer:
            async with asyncio.timeout(timeout_s):
                while len(records) < count:
                    batch = await consumer.getmany(timeout_ms=200)
                    for partition_records in batch.values():
                        records.extend(partition_records)
        return records

    async def results(self, count: int, *, timeout_s: float = 60.0) -> list[ResultEvent]:
        records = await self.read(self.topics.results, count, timeout_s=timeout_s)
        return [ResultEvent.model_validate_json(r.value) for r in records]

    async def stop(self) -> None:
        await self.stop_worker()
        await self._stack.aclose()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
