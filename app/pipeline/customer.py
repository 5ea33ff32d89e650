"""customer.changed: resolve the customer in ANVA and the portal, start from the dossier
as remembered or read, plan, apply, remember.

`sync_dossier` is the core the contract entry point shares: a contract arriving before
its customer syncs the customer first.
"""

from __future__ import annotations

from app.clients.portal import PortalCustomer
from app.events import CustomerChanged
from app.pipeline.apply import Applied
from app.pipeline.context import SyncContext, Synced
from app.pipeline.current import complete, read_dossier
from app.pipeline.mapping import desired_customer
from app.pipeline.model import DesiredCustomer, DossierState
from app.pipeline.plan import plan_customer
from app.pipeline.remembered import Known, applied_and_remembered, planned
from app.pipeline.resolve import resolve_customer
from app.pipeline.steps import Step
from app.state.record import PortalLocator, wanted_customer


async def sync_customer(context: SyncContext, event: CustomerChanged) -> Synced:
    """Make the dossier hold the customer as ANVA and the portal know it now."""
    number = event.dossierNumber
    upstream = await resolve_customer(context.anva, context.portal, number, event.portalCustomerId)
    desired = desired_customer(number, upstream.account, upstream.portal)
    async with context.owned(number):
        applied = await sync_dossier(context, desired, portal=_located(context, upstream.portal))
    return Synced(applied.dossier(), applied.writes)


def _located(context: SyncContext, customer: PortalCustomer | None) -> PortalLocator | None:
    """Where the portal listed the customer, for the record: spares a search after a restart."""
    page = context.portal.page_of(customer.id) if customer else None
    return PortalLocator(customer_id=customer.id, page=page) if customer and page else None


async def resolved_customer(
    context: SyncContext, dossier_number: str, portal_customer_id: str | None = None
) -> DesiredCustomer:
    upstream = await resolve_customer(
        context.anva, context.portal, dossier_number, portal_customer_id
    )
    return desired_customer(dossier_number, upstream.account, upstream.portal)


async def sync_dossier(
    context: SyncContext, desired: DesiredCustomer, *, portal: PortalLocator | None = None
) -> Applied:
    """Plan and apply `desired` from the dossier as known; the caller owns the dossier.

    An unchanged customer whose record is trusted costs no Elements request at all.
    """
    number = desired.dossier_number

    async def planner(known: Known) -> tuple[DesiredCustomer, list[Step]]:
        wanted = wanted_customer(desired, known.previous, known.current)
        await complete(context.elements, known.current, wanted)
        return wanted, plan_customer(wanted, known.current, context.defaults)

    async with context.locators_checked(number):
        known, wanted, steps = await planned(context, number, desired.kind, planner)
        return await applied_and_remembered(
            context, known, wanted, steps, upstream=desired, portal=portal
        )


async def planned_dossier(
    context: SyncContext, desired: DesiredCustomer
) -> tuple[list[Step], DossierState | None]:
    """The writes that would make the dossier hold `desired`, and the dossier they start on,
    read from Elements: what the dry run (`python -m app plan`) shows."""
    current = await read_dossier(context.elements, desired)
    return plan_customer(desired, current, context.defaults), current
