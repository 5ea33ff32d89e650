"""customer.changed: read the customer in ANVA and the portal side by side, start from the
dossier as remembered or read, plan, apply, remember.

`sync_dossier` is the core the contract entry point shares: a contract arriving before
its customer syncs the customer first; `linked_customer` is how a form's portal customer
id leads to its dossier number.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from app.clients.anva import AnvaAccount
from app.clients.portal import PortalCustomer, PortalDirectory
from app.domain.model import DesiredCustomer
from app.errors import CustomerNotFound
from app.events import CustomerChanged
from app.pipeline.apply import Applied, Step
from app.pipeline.context import SyncContext, Synced
from app.pipeline.customer_plan import desired_customer, plan_customer
from app.pipeline.dossier import (
    Known,
    applied_and_remembered,
    complete,
    planned,
    wanted_customer,
)
from app.state.record import PortalLocator

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Upstream:
    account: AnvaAccount | None
    portal: PortalCustomer | None


async def find_portal_customer(
    directory: PortalDirectory,
    dossier_number: str,
    portal_customer_id: str | None,
    *,
    fresh_after: float,
) -> PortalCustomer | None:
    """By the id the event names when that customer is linked to this dossier, else by the
    dossier number as its `integrationId`.

    The id is only a hint: a stale id upstream, or a customer of another integration,
    would otherwise put someone else's address, e-mail and phone into this dossier.
    """
    if portal_customer_id:
        customer = await directory.by_id(portal_customer_id, fresh_after=fresh_after)
        if customer is not None and customer.dossier_number == dossier_number:
            return customer
        log.warning(
            "portalCustomerId hint ignored",
            portal_customer_id=portal_customer_id,
            reason="unknown to the portal"
            if customer is None
            else "linked to another dossier or integration",
        )
    return await directory.by_dossier_number(dossier_number, fresh_after=fresh_after)


async def linked_customer(
    directory: PortalDirectory, portal_customer_id: str, *, fresh_after: float
) -> tuple[str, PortalCustomer]:
    """The portal customer a form names, and the dossier number its `integrationId` gives."""
    customer = await directory.by_id(portal_customer_id, fresh_after=fresh_after)
    if customer is None:
        raise CustomerNotFound(f"the portal does not know customer {portal_customer_id}")
    if customer.dossier_number is None:
        raise CustomerNotFound(f"portal customer {portal_customer_id} is not linked to ANVA")
    return customer.dossier_number, customer


async def resolve_customer(
    context: SyncContext, dossier_number: str, portal_customer_id: str | None = None
) -> Upstream:
    """Both as read after the arrival of the event that asks."""
    event = context.event
    event.progress("reading ANVA and the portal")
    with event.waiting(f"ANVA and the portal to answer for dossier {dossier_number}"):
        account, customer = await asyncio.gather(
            context.anva.account_for_dossier(dossier_number, fresh_after=event.arrived),
            find_portal_customer(
                context.portal, dossier_number, portal_customer_id, fresh_after=event.arrived
            ),
        )
    return Upstream(account, customer)


async def sync_customer(context: SyncContext, event: CustomerChanged) -> Synced:
    """Make the dossier hold the customer as ANVA and the portal know it now."""
    number = event.dossierNumber
    upstream = await resolve_customer(context, number, event.portalCustomerId)
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
    upstream = await resolve_customer(context, dossier_number, portal_customer_id)
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
        known.current = await complete(context.elements, known.current, wanted)
        return wanted, plan_customer(wanted, known.current, context.defaults)

    async with context.locators_checked(number):
        known, wanted, steps = await planned(context, number, desired.kind, planner)
        return await applied_and_remembered(
            context, known, wanted, steps, upstream=desired, portal=portal
        )
