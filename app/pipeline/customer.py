"""customer.changed: resolve → plan → apply, for one dossier number."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.clients.anva import AnvaClient
from app.clients.elements import ElementsClient
from app.clients.portal import PortalDirectory
from app.events import Operation
from app.keyed import KeyedLocks
from app.pipeline.apply import apply_plan
from app.pipeline.current import read_dossier
from app.pipeline.mapping import desired_customer
from app.pipeline.model import DesiredCustomer
from app.pipeline.plan import DossierDefaults, plan_customer
from app.pipeline.resolve import resolve_customer


@dataclass
class Pipeline:
    """The three clients and what the steps share.

    Work on one dossier is serialised by `dossier_locks`: the consumer already orders
    messages per key, but a form (keyed by portal customer id) and a customer event
    (keyed by dossier number) can name the same dossier.
    """

    anva: AnvaClient
    portal: PortalDirectory
    elements: ElementsClient
    defaults: DossierDefaults
    dossier_locks: KeyedLocks = field(default_factory=KeyedLocks)

    async def desired_customer(
        self, dossier_number: str, portal_customer_id: str | None = None
    ) -> DesiredCustomer:
        upstream = await resolve_customer(
            self.anva, self.portal, dossier_number, portal_customer_id
        )
        return desired_customer(dossier_number, upstream.account, upstream.portal)

    async def sync_customer(self, desired: DesiredCustomer, operations: list[Operation]) -> int:
        """Make Elements hold `desired`; returns the dossier id."""
        async with self.dossier_locks.hold(desired.dossier_number):
            current = await read_dossier(self.elements, desired)
            steps = plan_customer(desired, current, self.defaults)
            return await apply_plan(self.elements, steps, current, operations)
