"""Read a customer's current state from ANVA and the portal, side by side."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from app.clients.anva import AnvaAccount, AnvaClient
from app.clients.portal import PortalCustomer, PortalDirectory
from app.errors import CustomerNotFound

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Upstream:
    account: AnvaAccount | None
    portal: PortalCustomer | None


async def find_portal_customer(
    directory: PortalDirectory, dossier_number: str, portal_customer_id: str | None
) -> PortalCustomer | None:
    """By the id the event names when that customer is linked to this dossier, else by the
    dossier number as its `integrationId`.

    The id is only a hint: a stale id upstream, or a customer of another integration,
    would otherwise put someone else's address, e-mail and phone into this dossier.
    """
    if portal_customer_id:
        customer = await directory.by_id(portal_customer_id)
        if customer is not None and customer.dossier_number == dossier_number:
            return customer
        log.warning(
            "portalCustomerId hint ignored",
            portal_customer_id=portal_customer_id,
            reason="unknown to the portal"
            if customer is None
            else "linked to another dossier or integration",
        )
    return await directory.by_dossier_number(dossier_number)


async def linked_customer(
    directory: PortalDirectory, portal_customer_id: str
) -> tuple[str, PortalCustomer]:
    """The portal customer a form names, and the dossier number its `integrationId` gives."""
    customer = await directory.by_id(portal_customer_id)
    if customer is None:
        raise CustomerNotFound(f"the portal does not know customer {portal_customer_id}")
    if customer.dossier_number is None:
        raise CustomerNotFound(f"portal customer {portal_customer_id} is not linked to ANVA")
    return customer.dossier_number, customer


async def resolve_customer(
    anva: AnvaClient,
    directory: PortalDirectory,
    dossier_number: str,
    portal_customer_id: str | None = None,
) -> Upstream:
    account, customer = await asyncio.gather(
        anva.account_for_dossier(dossier_number),
        find_portal_customer(directory, dossier_number, portal_customer_id),
    )
    return Upstream(account, customer)
