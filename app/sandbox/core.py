"""The core without Kafka: the real clients and pipeline on the three simulators over ASGI.

No socket and no broker: each client's `httpx.AsyncClient` mounts its simulator through
`httpx.ASGITransport`, so a unit test (or `python -m app bench-costs`) calls an entry point
(or the outcome ladder) as a plain function and looks at what the simulators received and
hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from app.clients.anva import AnvaClient
from app.clients.elements import ElementsClient
from app.clients.limiter import ElementsLimiter
from app.clients.portal import PortalClient, PortalDirectory
from app.events import EventType, input_event_bytes
from app.pipeline.context import SyncContext
from app.pipeline.customer_plan import DossierDefaults
from app.sandbox.simulators.anva import AnvaSimulator
from app.sandbox.simulators.elements import ElementsSimulator, RecordedRequest
from app.sandbox.simulators.portal import PortalSimulator
from app.sandbox.simulators.seed import SampleCustomer, seed_customer
from app.service import Outcome, SyncService
from app.settings import ContractSettings, RetrySettings
from app.state.memory import DossierMemory
from app.ticket import Ticket

ANVA_TOKEN = "anva-token"
PORTAL_TOKEN = "portal-token"
ELEMENTS_SECRET = "s3cret"
FAST_RETRY = RetrySettings(
    max_attempts=3, max_elapsed_s=30, max_outage_s=30, initial_backoff_s=0.001, max_backoff_s=0.01
)
"""Three attempts, milliseconds apart."""

_WRITES = ("POST", "PATCH")


@dataclass
class Core:
    anva: AnvaSimulator
    portal: PortalSimulator
    elements: ElementsSimulator
    context: SyncContext
    service: SyncService
    _writes_sent: int = 0
    _faults: dict[int, int | Exception] = field(default_factory=dict)

    def seed(self, index: int) -> SampleCustomer:
        """Sample customer `index` of the seed, in ANVA and the portal."""
        return seed_customer(self.anva, self.portal, index)

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

    def fail_write(self, number: int, fault: int | Exception) -> None:
        """The `number`th write from now is answered `fault` (a status) unapplied, or raises
        `fault` in the client, as a bug of ours would."""
        self._faults[self._writes_sent + number] = fault

    async def _on_request(self, request: httpx.Request) -> None:
        if request.method not in _WRITES or not request.url.path.startswith("/api/data"):
            return
        self._writes_sent += 1
        fault = self._faults.pop(self._writes_sent, None)
        if isinstance(fault, Exception):
            raise fault
        if fault is not None:
            self.elements.faults.fail_next(1, status=fault)


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
    limiter = ElementsLimiter(rate_per_s=10_000, daily_limit=1_000_000, margin_s=0)
    async with AsyncExitStack() as stack:

        async def mounted(app: Any, base_url: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app)
            client = httpx.AsyncClient(transport=transport, base_url=base_url)
            return await stack.enter_async_context(client)

        elements_http = await mounted(elements.app, "http://elements")
        context = SyncContext(
            anva=AnvaClient(await mounted(anva.app, "http://anva/api"), SecretStr(ANVA_TOKEN)),
            portal=PortalDirectory(
                PortalClient(
                    await mounted(portal.app, "http://portal/v1"), SecretStr(PORTAL_TOKEN)
                ),
                ttl_s=300,
            ),
            elements=ElementsClient(
                elements_http,
                limiter,
                client_id="elements-sync",
                client_secret=SecretStr(ELEMENTS_SECRET),
                organisation="4242",
                webservice="data",
                scope="klantdossier.read klantdossier.write",
            ),
            defaults=DossierDefaults(kantoor_id=1, dossierstatus_id=1),
            contracts=contracts or ContractSettings(),
            memory=memory if memory is not None else DossierMemory(max_age_s=86_400),
        )
        core = Core(anva, portal, elements, context, SyncService(context, limiter, retry=retry))
        elements_http.event_hooks["request"].append(core._on_request)
        yield core
