"""customer.changed: resolve the customer in ANVA and the portal, start from the dossier
as remembered or read, plan, apply, remember.

`sync_dossier` is the core the contract entry point shares: a contract arriving before
its customer syncs the customer first. `apply_customer_plan` is the apply the form
entry point shares: every value of a customer plan is checked before its first write.
"""

from __future__ import annotations

from app.clients.portal import PortalCustomer
from app.events import CustomerChanged
from app.pipeline.apply import Applied, apply_plan
from app.pipeline.context import SyncContext, Synced
from app.pipeline.current import read_dossier
from app.pipeline.limits import Origins, check_lengths
from app.pipeline.mapping import CUSTOMER_ORIGINS, desired_customer
from app.pipeline.model import DesiredCustomer, DossierState
from app.pipeline.plan import plan_customer
from app.pipeline.remembered import known_dossier, remember_dossier
from app.pipeline.resolve import resolve_customer
from app.pipeline.steps import Step
from app.state.record import PortalLocator, wanted_customer


async def sync_customer(context: SyncContext, event: CustomerChanged) -> Synced:
    """Make the dossier hold the customer as ANVA and the portal know it now."""
    number = event.dossierNumber
    upstream = await resolve_customer(context.anva, context.portal, number, event.portalCustomerId)
    desired = desired_customer(number, upstream.account, upstream.portal)
    async with context.dossier_locks.hold(number):
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
    """Plan and apply `desired` from the dossier as known; the caller holds its lock.

    An unchanged customer whose record is trusted costs no Elements request at all.
    """
    number = desired.dossier_number
    async with context.locators_checked(number):
        wanted = wanted_customer(desired, context.memory.get(number))
        known = await known_dossier(context, wanted)
        steps = plan_customer(wanted, known.current, context.defaults)
        applied = await apply_customer_plan(context, steps, known.current)
        await remember_dossier(context, known, wanted, applied, upstream=desired, portal=portal)
    return applied


async def planned_dossier(
    context: SyncContext, desired: DesiredCustomer
) -> tuple[list[Step], DossierState | None]:
    """The writes that would make the dossier hold `desired`, and the dossier they start on,
    read from Elements: what the dry run (`python -m app plan`) shows."""
    current = await read_dossier(context.elements, desired)
    return plan_customer(desired, current, context.defaults), current


async def apply_customer_plan(
    context: SyncContext,
    steps: list[Step],
    current: DossierState | None,
    origins: Origins = CUSTOMER_ORIGINS,
) -> Applied:
    """Apply a plan whose every value Elements takes; `origins` name them when not.

    The dossier's record is durably marked unread before the first write.
    """
    check_lengths(steps, origins)
    if steps and current is not None:
        await context.memory.before_writes(current.relatienummer)
    return await apply_plan(
        context.elements, steps, Applied.on(current), medewerkers=context.medewerkers
    )
