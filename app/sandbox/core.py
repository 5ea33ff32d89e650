"""The core without Kafka: the worker's own pipeline (`app.wiring.build_pipeline`) on the three
simulators over ASGI.

No socket and no broker: each client's `httpx.AsyncClient` mounts its simulator through
`httpx.ASGITransport`, so a unit test (or `python -m app bench-costs`) calls an entry point
(or the outcome ladder) as a plain function and looks at what the simulators received and
hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import AnyHttpUrl, SecretStr

from app.clients.anva import API as ANVA
from app.clients.elements import API as ELEMENTS
from app.clients.portal import API as PORTAL
from app.events import ContractChanged, CustomerChanged, EventType, input_event_bytes
from app.pipeline.context import SyncContext
from app.pipeline.customer import sync_customer
from app.sandbox.simulators.anva import AnvaSimulator
from app.sandbox.simulators.elements import ElementsSimulator, RecordedRequest
from app.sandbox.simulators.portal import PortalSimulator
from app.sandbox.simulators.seed import SampleCustomer, seed_customer
from app.sandbox.tenant import sandbox_contracts
from app.service import Outcome, SyncService
from app.settings import (
    AnvaSettings,
    ContractSettings,
    ElementsSettings,
    PortalSettings,
    RetrySettings,
    Settings,
    TracingSettings,
)
from app.state.memory import DossierMemory
from app.ticket import Ticket
from app.wiring import build_pipeline

ANVA_TOKEN = "anva-token"
PORTAL_TOKEN = "portal-token"
ELEMENTS_SECRET = "s3cret"
FAST_RETRY = RetrySettings(
    max_attempts=3, max_elapsed_s=30, max_outage_s=30, initial_backoff_s=0.001, max_backoff_s=0.01
)
"""Three attempts, milliseconds apart."""

_WRITES = ("POST", "PATCH")


@dataclass(frozen=True)
class LostAnswer:
    """A write Elements applies and whose answer is lost: the worker gets `status`."""

    status: int = 502


WriteFault = int | Exception | LostAnswer
"""A status answered unapplied, an error raised in the client, or a lost answer."""


class WriteFaults(httpx.AsyncBaseTransport):
    """Elements' transport, which answers a chosen write with a fault (`Core.fail_write`)."""

    def __init__(self, elements: ElementsSimulator, inner: httpx.AsyncBaseTransport) -> None:
        self._elements = elements
        self._inner = inner
        self._writes_sent = 0
        self._faults: dict[int, WriteFault] = {}

    def fail(self, number: int, fault: WriteFault) -> None:
        self._faults[self._writes_sent + number] = fault

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method in _WRITES and request.url.path.startswith("/api/data"):
            self._writes_sent += 1
            fault = self._faults.pop(self._writes_sent, None)
            if isinstance(fault, Exception):
                raise fault
            if isinstance(fault, LostAnswer):
                self._elements.faults.apply_then_fail_next(1, status=fault.status)
            elif fault is not None:
                self._elements.faults.fail_next(1, status=fault)
        return await self._inner.handle_async_request(request)


@dataclass
class Core:
    anva: AnvaSimulator
    portal: PortalSimulator
    elements: ElementsSimulator
    context: SyncContext
    service: SyncService
    _faults: WriteFaults

    def seed(self, index: int) -> SampleCustomer:
        """Sample customer `index` of the seed, in ANVA and the portal."""
        return seed_customer(self.anva, self.portal, index)

    async def synced_customer(self, index: int) -> SampleCustomer:
        """Sample customer `index` of the seed, synced once into Elements."""
        customer = self.seed(index)
        await sync_customer(self.context, CustomerChanged(dossierNumber=customer.dossier_number))
        return customer

    def new_contract(self, dossier_number: str, contract_id: str) -> ContractChanged:
        """A new contract of the dossier in ANVA, and its event."""
        self.anva.add_contract(
            contract_id=contract_id,
            dossier_number=dossier_number,
            format="ZPP NN",
            status="Lopend",
            metadata={"omschrijving": "Aansprakelijkheid particulier", "startDate": "2026-01-01"},
        )
        return ContractChanged(contractId=contract_id, dossierNumber=dossier_number)

    async def handle(
        self, event_type: EventType, data: dict[str, Any], ticket: Ticket | None = None
    ) -> Outcome:
        """One event through the outcome ladder, as the consumer hands it over (on `ticket`,
        as the consumer makes one; without it as work outside an event)."""
        return await self.service.handle(
            input_event_bytes(event_type, data), key="test", ticket=ticket
        )

    def dossier(self, dossier_number: str) -> dict[str, Any]:
        """The one dossier Elements holds with this relatienummer, everything in it."""
        matching = [d for d in self.elements.dossiers() if d["relatienummer"] == dossier_number]
        assert len(matching) == 1, f"expected one dossier {dossier_number}, found {len(matching)}"
        return matching[0]

    def klant(self, dossier_number: str) -> dict[str, Any]:
        """The dossier's one klant, of either kind."""
        klanten = self.dossier(dossier_number)["klanten"]
        (klant,) = klanten["particulier"] + klanten["zakelijk"]
        return dict(klant)

    def data_requests(self) -> list[RecordedRequest]:
        """What Elements received under `/api/data` (token requests left out), in order."""
        return [r for r in self.elements.requests if r.path.startswith("/api/data")]

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.data_requests() if r.method in _WRITES]

    def reads(self) -> list[RecordedRequest]:
        return [r for r in self.data_requests() if r.method == "GET"]

    def fail_write(self, number: int, fault: WriteFault) -> None:
        """The `number`th write from now is answered `fault` (a status) unapplied, raises
        `fault` in the client, as a bug of ours would, or is applied with its answer lost."""
        self._faults.fail(number, fault)


def core_settings(*, contracts: ContractSettings | None, retry: RetrySettings) -> Settings:
    """The worker's settings for the simulators mounted in process: a limit no test reaches,
    and every value explicit, so no variable of the shell that runs a benchmark changes it."""
    return Settings(
        anva=AnvaSettings(base_url=AnyHttpUrl("http://anva/api"), token=SecretStr(ANVA_TOKEN)),
        portal=PortalSettings(
            base_url=AnyHttpUrl("http://portal/v1"), token=SecretStr(PORTAL_TOKEN), index_ttl_s=300
        ),
        elements=ElementsSettings(
            base_url=AnyHttpUrl("http://elements"),
            client_id="elements-sync",
            client_secret=SecretStr(ELEMENTS_SECRET),
            organisation="4242",
            kantoor_id=1,
            dossierstatus_id=1,
            rate_limit=10_000,
            daily_limit=1_000_000,
            rate_margin_s=0,
            limiter_redis_url=None,
        ),
        contracts=contracts or sandbox_contracts(),
        retry=retry,
        tracing=TracingSettings(exporter_otlp_endpoint=None),
    )


@asynccontextmanager
async def running_core(
    *,
    contracts: ContractSettings | None = None,
    retry: RetrySettings = FAST_RETRY,
    memory: DossierMemory | None = None,
) -> AsyncIterator[Core]:
    anva = AnvaSimulator(token=ANVA_TOKEN)
    portal = PortalSimulator(token=PORTAL_TOKEN)
    elements = ElementsSimulator("elements-sync", ELEMENTS_SECRET, "4242", rate_limit=10_000)
    faults = WriteFaults(elements, httpx.ASGITransport(app=elements.app))
    pipeline = build_pipeline(
        core_settings(contracts=contracts, retry=retry),
        transports={
            ANVA: httpx.ASGITransport(app=anva.app),
            PORTAL: httpx.ASGITransport(app=portal.app),
            ELEMENTS: faults,
        },
        memory=memory if memory is not None else DossierMemory(max_age_s=86_400),
    )
    try:
        yield Core(anva, portal, elements, pipeline.context, pipeline.service, faults)
    finally:
        await pipeline.close()
