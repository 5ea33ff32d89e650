"""Read what Elements holds for a dossier number — only what the plan needs to compare."""

from __future__ import annotations

from app.clients.elements import ElementsAdres, ElementsClient
from app.pipeline.model import (
    Adres,
    DesiredCustomer,
    DossierState,
    KlantKind,
    KlantState,
    StoredAdres,
)
from app.pipeline.plan import address_is_current


def stored_adres(adres: ElementsAdres) -> StoredAdres:
    return StoredAdres(
        id=adres.id,
        adres=Adres(
            straat=adres.straat,
            nummer=adres.nummer,
            toevoeging=adres.toevoeging,
            postcode=adres.postcode,
            plaatsnaam=adres.plaatsnaam,
        ),
    )


async def find_klant(
    elements: ElementsClient, dossier_id: int, preferred: KlantKind
) -> KlantState | None:
    """The dossier's klant, looking at the preferred kind first (one read when it is there)."""
    other: KlantKind = "zakelijk" if preferred == "particulier" else "particulier"
    for kind in (preferred, other):
        klanten = await elements.klanten(dossier_id, kind)
        if klanten:
            return KlantState(kind=kind, id=min(k.id for k in klanten))
    return None


async def read_dossier_core(
    elements: ElementsClient, dossier_number: str, preferred: KlantKind
) -> DossierState | None:
    """The klantdossier with this relatienummer, its standaard address and its klant."""
    found = [
        d
        for d in await elements.find_dossiers(relatienummer=dossier_number)
        if d.relatienummer == dossier_number
    ]
    if not found:
        return None
    dossier = min(found, key=lambda d: d.id)
    standaard = dossier.standaardcorrespondentieadres
    return DossierState(
        id=dossier.id,
        relatienummer=dossier_number,
        standaard_adres=stored_adres(standaard) if standaard else None,
        klant=await find_klant(elements, dossier.id, preferred),
    )


async def read_adressen(elements: ElementsClient, state: DossierState) -> None:
    """Fill in the klant's addresses, to reuse one instead of adding a twin."""
    klant = state.klant
    if klant is not None and klant.adressen is None:
        adressen = await elements.adressen(state.id, klant.kind, klant.id)
        klant.adressen = [stored_adres(a) for a in adressen]


async def read_dossier(elements: ElementsClient, desired: DesiredCustomer) -> DossierState | None:
    """The dossier and the parts of it the plan compares with `desired`.

    Addresses are read only when the dossier's standaard correspondentieadres differs
    from the desired one, e-mail and phone lists only when there is one to compare.
    """
    state = await read_dossier_core(elements, desired.dossier_number, desired.kind)
    klant = state.klant if state else None
    if state is None or klant is None:
        return state
    if not address_is_current(desired, state):
        await read_adressen(elements, state)
    if desired.email:
        emails = await elements.contacts(state.id, klant.kind, klant.id, "emailadressen")
        klant.emails = [e.naam for e in emails]
    if desired.phone:
        phones = await elements.contacts(state.id, klant.kind, klant.id, "telefoonnummers")
        klant.phones = [p.naam for p in phones]
    return state
