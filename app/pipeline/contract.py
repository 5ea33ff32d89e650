"""contract.changed: exactly one Elements contract per ANVA contract id.

Finding the contract costs nothing while this process remembers it (`KnownContract`),
and after a restart one filtered dossier search (`contractnummer`) tells whether it
exists — no scan of the dossier's products unless it does, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.clients.anva import AnvaContract
from app.clients.elements import ElementsClient
from app.events import Operation
from app.pipeline.contract_mapping import (
    contract_summary,
    fingerprint,
    fingerprint_in,
)


@dataclass
class KnownContract:
    """Where an ANVA contract lives in Elements and which ANVA state it was last synced from."""

    dossier_id: int
    product_id: int
    fingerprint: str | None
    summary: dict[str, str] | None = None

    def synced_from(self, contract: AnvaContract) -> KnownContract:
        return KnownContract(
            self.dossier_id, self.product_id, fingerprint(contract), contract_summary(contract)
        )


async def find_contract(
    elements: ElementsClient, dossier_number: str, contract_id: str
) -> KnownContract | None:
    """Look the contract up in Elements: one search, and two reads only when it exists."""
    holders = await elements.find_dossiers(relatienummer=dossier_number, contractnummer=contract_id)
    holders = [d for d in holders if d.relatienummer == dossier_number]
    if not holders:
        return None
    dossier_id = holders[0].id
    products = await elements.producten(dossier_id)
    product = next(
        (p for p in products if p.soort == "contracten" and p.contractnummer == contract_id), None
    )
    if product is None:
        return None
    registraties = await elements.contract_registraties(dossier_id, product.id)
    marks = [fingerprint_in(r.onderwerp) for r in sorted(registraties, key=lambda r: r.id)]
    last = next((m for m in reversed(marks) if m), None)
    return KnownContract(dossier_id, product.id, last)


def created_contract(dossier_id: int, created: Operation, contract: AnvaContract) -> KnownContract:
    if created.resourceId is None:
        raise RuntimeError("a created contract has an id")
    return KnownContract(
        dossier_id, created.resourceId, fingerprint(contract), contract_summary(contract)
    )
