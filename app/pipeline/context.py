"""What the entry points share — the context they run in — and the record each returns.

One entry point per event type (`customer`, `contract`, `form`) and one for the forms
prefill (`prefill`) all run on one `SyncContext`: the three clients, the fixed values
no upstream system gives, and the worker's memory of each dossier (`app.state`). What
it remembers spares reads of Elements; it never stands in for upstream's current state.

An event runs on a copy bound to its ticket (`for_event`, `app.ticket`): its Elements
client takes slots at the event's priority and stops at its handover, and the upstream
reads, the dossier's ownership and its records are asked for with the ticket's arrival,
priority and handover. The context the worker builds has no ticket: the prefill and the
operator commands run on it as work outside an event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from app.clients.anva import AnvaClient
from app.clients.elements import ElementsClient
from app.clients.portal import PortalDirectory
from app.errors import StaleLocator, UpstreamRejected
from app.events import Operation
from app.pipeline.customer_plan import DossierDefaults
from app.settings import ContractSettings
from app.state.memory import DossierMemory
from app.state.ownership import DossierOwners
from app.ticket import Ticket, or_now

RECORD_CATCH_UP_S = 1.0
"""How long a new owner waits for the previous owner's record to reach it from the topic."""


@dataclass(frozen=True)
class Synced:
    """One event's record: the dossier it synced, the Elements writes it made (none when
    nothing changed), for a form the fields it ignored, and the event whose sync served
    it when it was coalesced with one queued before it (`app.pipeline.coalesce`)."""

    dossier_id: int
    writes: tuple[Operation, ...] = ()
    ignored_fields: tuple[str, ...] | None = None
    served_by: str | None = None


@dataclass
class SyncContext:
    """The clients and settings every entry point needs, and the process's memory.

    Work on one dossier is serialised by `owned`: the consumer already orders messages
    per key, but a form (keyed by portal customer id) and a customer event (keyed by
    dossier number) can name the same dossier, on this replica or another. `contracts` comes from the
    settings tree (`ELEMENTS_CONTRACT_*`) like everything else the worker is told.
    """

    anva: AnvaClient
    portal: PortalDirectory
    elements: ElementsClient
    defaults: DossierDefaults
    contracts: ContractSettings
    memory: DossierMemory
    owners: DossierOwners = field(default_factory=DossierOwners)
    ticket: Ticket | None = None
    """The event this context works for; None outside events."""

    def for_event(self, ticket: Ticket) -> SyncContext:
        """This context for one event: what it asks for is asked for on its ticket."""
        return replace(self, elements=self.elements.for_event(ticket), ticket=ticket)

    @property
    def event(self) -> Ticket:
        """The ticket to ask with: the event's, or outside an event one as of now, so that
        work no event asked for shares only reads that start after it asks."""
        return or_now(self.ticket)

    @asynccontextmanager
    async def owned(self, dossier_number: str) -> AsyncIterator[None]:
        """Own the dossier (`app.state.ownership`) with its newest record in memory: a record
        older than the last one its owners confirmed is not planned from."""
        ticket = self.event
        async with self.owners.hold(dossier_number, ticket) as owned:
            with ticket.owning(owned.check):
                if owned.newest_revision:
                    await self.memory.caught_up(
                        dossier_number, owned.newest_revision, timeout_s=RECORD_CATCH_UP_S
                    )
                yield

    @asynccontextmanager
    async def locators_checked(self, dossier_number: str) -> AsyncIterator[None]:
        """A 404 under a remembered id means it was removed in Elements: read afresh."""
        remembered = self.memory.get(dossier_number) is not None
        try:
            yield
        except UpstreamRejected as error:
            if error.status != 404 or not remembered:
                raise
            await self.memory.forget(dossier_number, self.event)
            stale = StaleLocator("an Elements resource the worker knew is gone")
            stale.writes = error.writes
            raise stale from error
