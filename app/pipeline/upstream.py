"""What upstream (ANVA and the portal) says about one customer, read after the event that asks.

`read_upstream` reads both side by side for a dossier number; `read_desired` turns that into
the customer Elements should hold (`customer_plan.desired_customer`). `linked_customer` is how
a form's (or the prefill's) portal customer id leads to its dossier number.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from app.clients.anva import AnvaAccount
from app.clients.portal import PortalCustomer, PortalDirectory
from app.domain.model import DesiredCustomer
from app.errors import CustomerNotFound
from app.pipeline.context import SyncContext
from app.pipeline.customer_plan import desired_customer

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Upstream:
    """The customer as ANVA and the portal gave it; None where one does not know it."""

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


async def read_upstream(
    context: SyncContext, dossier_number: str, portal_customer_id: str | None = None
) -> Upstream:
    """ANVA's account and the portal's customer, both as read after the arrival of the event
    that asks."""
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


async def read_desired(context: SyncContext, dossier_number: str) -> DesiredCustomer:
    """The customer Elements should hold, as upstream says it now."""
    upstream = await read_upstream(context, dossier_number)
    return desired_customer(dossier_number, upstream.account, upstream.portal)
