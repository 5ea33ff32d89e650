"""Read a customer's current state from ANVA and the portal, side by side."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from app.clients.anva import AnvaAccount, AnvaClient
from app.clients.portal import PortalCustomer, PortalDirectory


@dataclass(frozen=True)
class Upstream:
    account: AnvaAccount | None
    portal: PortalCustomer | None


async def find_portal_customer(
    directory: PortalDirectory, dossier_number: str, portal_customer_id: str | None
) -> PortalCustomer | None:
    """By the id the event names, else by the dossier number as its `integrationId`."""
    if portal_customer_id:
        customer = await directory.by_id(portal_customer_id)
        if customer is not None:
            return customer
    return await directory.by_dossier_number(dossier_number)


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
