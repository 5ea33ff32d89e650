"""customer.changed: read the customer in ANVA and the portal side by side, own the dossier,
and sync it (`dossier.sync_dossier`)."""

from __future__ import annotations

from app.clients.portal import PortalCustomer
from app.events import CustomerChanged
from app.pipeline.context import SyncContext, Synced
from app.pipeline.customer_plan import desired_customer
from app.pipeline.dossier import sync_dossier
from app.pipeline.upstream import read_upstream
from app.state.record import PortalLocator


async def sync_customer(context: SyncContext, event: CustomerChanged) -> Synced:
    """Make the dossier hold the customer as ANVA and the portal know it now."""
    number = event.dossierNumber
    upstream = await read_upstream(context, number, event.portalCustomerId)
    desired = desired_customer(number, upstream.account, upstream.portal)
    async with context.owned(number):
        applied = await sync_dossier(context, desired, portal=_located(context, upstream.portal))
    return Synced(applied.dossier(), applied.writes)


def _located(context: SyncContext, customer: PortalCustomer | None) -> PortalLocator | None:
    """Where the portal listed the customer, for the record: spares a search after a restart."""
    page = context.portal.page_of(customer.id) if customer else None
    return PortalLocator(customer_id=customer.id, page=page) if customer and page else None
