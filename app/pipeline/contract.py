"""contract.changed: exactly one Elements contract per ANVA contract id.

Finding the contract costs nothing while this process remembers it (`KnownContract`),
and after a restart one filtered dossier search (`contractnummer`, a documented filter)
tells whether it exists — no scan of the dossier's products unless it does, once. The
spec shows no `contractnummer` on a read, so the product is recognised by the marker
its `omschrijving` carries (`contract_mapping.carries_marker`).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.clients.anva import AnvaContract
from app.clients.elements import ElementsClient
from app.errors import ContractAanvragerUnknown
from app.events import Operation
from app.pipeline.contract_mapping import (
    Aanvragers,
    carries_marker,
    contract_summary,
    fingerprint,
    fingerprint_in,
    medewerker_payload,
)
from app.pipeline.model import DesiredCustomer, KlantKind, Persoon
from app.pipeline.plan import klant_payload
from app.settings import ContractSettings

# organisation klant id → the medewerker that applies for its contracts
MedewerkerLocators = dict[int, int]


@dataclass
class KnownContract:
    """Where an ANVA contract lives in Elements and which ANVA state it was last synced from.

    `fingerprint` is None while the contract has no registratie of ours: it was just
    created, or its creation's answer was lost before the "overgenomen" registratie.
    """

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
    """Look the contract up in Elements: one search, and two reads only when it exists.

    Only the dossier with this relatienummer counts: another customer's dossier holding
    the same contractnummer is never used.
    """
    holders = await elements.find_dossiers(relatienummer=dossier_number, contractnummer=contract_id)
    holders = [d for d in holders if d.relatienummer == dossier_number]
    if not holders:
        return None
    dossier_id = holders[0].id
    products = await elements.producten(dossier_id)
    product = next(
        (
            p
            for p in products
            if p.soort == "contracten" and carries_marker(p.omschrijving, contract_id)
        ),
        None,
    )
    if product is None:
        return None
    registraties = await elements.contract_registraties(dossier_id, product.id)
    marks = [fingerprint_in(r.onderwerp) for r in sorted(registraties, key=lambda r: r.id)]
    last = next((m for m in reversed(marks) if m), None)
    return KnownContract(dossier_id, product.id, last)


def created_contract(dossier_id: int, created: Operation) -> KnownContract:
    if created.resourceId is None:
        raise RuntimeError("a created contract has an id")
    return KnownContract(dossier_id, created.resourceId, None)


async def contract_aanvragers(
    elements: ElementsClient,
    desired: DesiredCustomer,
    dossier_id: int,
    klant: tuple[KlantKind, int],
    *,
    medewerkers: MedewerkerLocators,
    settings: ContractSettings,
    operations: list[Operation],
) -> Aanvragers:
    """The dossier's particulier klant, or a medewerker of its zakelijk klant.

    A person is known when the ANVA account of the dossier has a last name (`desired`
    then names a `Persoon`); the dossier keeps a zakelijk klant made before ANVA knew
    one. That person becomes a medewerker once per organisation and process: the API
    lists no medewerkers, so one cannot be found again.
    """
    kind, klant_id = klant
    if kind == "particulier":
        return Aanvragers(klant_id)
    if not isinstance(desired.klant, Persoon):
        raise ContractAanvragerUnknown(
            f"dossier {desired.dossier_number}: its klant is an organisation and ANVA names no "
            "person (no lastName on the account) to be the contract's eersteAanvrager"
        )
    medewerker = medewerkers.get(klant_id)
    if medewerker is None:
        payload = medewerker_payload(klant_payload(desired), settings)
        created = await elements.create_medewerker(dossier_id, klant_id, payload)
        operations.append(created)
        if created.resourceId is None:
            raise RuntimeError("a created medewerker has an id")
        medewerker = medewerkers[klant_id] = created.resourceId
    return Aanvragers(medewerker, organisatie_id=klant_id)
