"""What the sync reads of a klantdossier in Elements: only what a plan needs to compare.

`read_dossier_core` finds the dossier by its relatienummer (which confirms its identity) with
its standaard correspondentieadres and its klant; `complete` adds the lists a plan needs and
the dossier as known does not hold yet (the klant's addresses, e-mail addresses, phones).
"""

from __future__ import annotations

from app.clients.elements import ContactList, ElementsAdres, ElementsClient, KlantKind
from app.domain.address import Categorie, categorie_of
from app.domain.model import (
    Adres,
    DesiredCustomer,
    DossierState,
    KlantState,
    StoredAdres,
    address_is_current,
)
from app.errors import KlantdossierDeleted


def _categorie(rendered: str | None) -> Categorie | None:
    """Elements renders a categorie its own way ("default" for Standaard); None: not told.

    The words are the ones a box address has as straat, so `categorie_of` reads both.
    """
    return None if rendered is None else categorie_of(rendered)


def stored_adres(adres: ElementsAdres) -> StoredAdres:
    return StoredAdres(
        id=adres.id,
        adres=Adres(
            straat=adres.straat,
            nummer=adres.nummer,
            toevoeging=adres.toevoeging,
            postcode=adres.postcode,
            plaatsnaam=adres.plaatsnaam,
            categorie=_categorie(adres.categorie),
        ),
    )


async def find_klant(
    elements: ElementsClient, dossier_id: int, preferred: KlantKind
) -> KlantState | None:
    """The dossier's klant, read with the preferred kind first."""
    other: KlantKind = "zakelijk" if preferred == "particulier" else "particulier"
    for kind in (preferred, other):
        klanten = await elements.klanten(dossier_id, kind)
        if klanten:
            return KlantState(kind=kind, id=min(k.id for k in klanten))
    return None


async def read_dossier_core(
    elements: ElementsClient,
    dossier_number: str,
    preferred: KlantKind,
    remembered: tuple[int, KlantState] | None = None,
) -> DossierState | None:
    """The klantdossier with this relatienummer, its standaard address and its klant
    (`remembered`: the dossier id and klant a record names, which spares listing klanten
    when the search finds that dossier: the API cannot delete a klant, and one removed by
    hand answers 404, which makes the record forgotten).

    The search confirms the dossier's identity (docs/reference/events.md): only a dossier that
    carries the number and is not deleted counts; when only deleted ones carry it, a person
    deleted the customer's dossier and a person decides (`KlantdossierDeleted`).
    """
    found = [
        d
        for d in await elements.find_dossiers(relatienummer=dossier_number)
        if d.relatienummer == dossier_number
    ]
    live = [d for d in found if d.carries(dossier_number)]
    if found and not live:
        raise KlantdossierDeleted(
            f"the only klantdossiers with relatienummer {dossier_number} are deleted "
            f"({', '.join(str(d.id) for d in found)})"
        )
    if not live:
        return None
    dossier = min(live, key=lambda d: d.id)
    standaard = dossier.standaardcorrespondentieadres
    if remembered is not None and remembered[0] == dossier.id:
        klant: KlantState | None = remembered[1]
    else:
        klant = await find_klant(elements, dossier.id, preferred)
    return DossierState(
        dossier_number=dossier_number,
        dossier_id=dossier.id,
        standaard_adres=stored_adres(standaard) if standaard else None,
        klant=klant,
    )


async def read_adressen(elements: ElementsClient, state: DossierState) -> DossierState:
    """`state` with the klant's addresses, to reuse one instead of adding a twin.

    The list also tells the standaard correspondentieadres' categorie, which the
    dossier's embedded copy leaves out.
    """
    klant = state.klant
    if klant is None or klant.adressen is not None:
        return state
    listed = await elements.adressen(state.dossier_id, klant.kind, klant.id)
    adressen = tuple(stored_adres(a) for a in listed)
    standaard = state.standaard_adres
    categorised = next((a for a in adressen if standaard and a.id == standaard.id), standaard)
    return state.model_copy(
        update={
            "klant": klant.model_copy(update={"adressen": adressen}),
            "standaard_adres": categorised,
        }
    )


async def read_contacts(
    elements: ElementsClient, dossier_id: int, klant: KlantState, which: ContactList
) -> tuple[str, ...]:
    """The klant's e-mail addresses or phone numbers, oldest first."""
    found = await elements.contacts(dossier_id, klant.kind, klant.id, which)
    return tuple(contact.naam for contact in sorted(found, key=lambda contact: contact.id))


async def complete(
    elements: ElementsClient, state: DossierState | None, desired: DesiredCustomer
) -> DossierState | None:
    """`state` with what the plan needs to compare `desired` with and it did not know yet.

    The address list only when the dossier's standaard correspondentieadres differs
    from the desired one, the e-mail and phone lists only when there is one to compare.
    """
    if state is None or state.klant is None:
        return state
    if not address_is_current(desired, state):
        state = await read_adressen(elements, state)
    klant = state.klant
    assert klant is not None, "read_adressen keeps the klant"
    lists: dict[str, tuple[str, ...]] = {}
    if desired.email and klant.emails is None:
        lists["emails"] = await read_contacts(elements, state.dossier_id, klant, "emailadressen")
    if desired.phone and klant.phones is None:
        lists["phones"] = await read_contacts(elements, state.dossier_id, klant, "telefoonnummers")
    return state.model_copy(update={"klant": klant.model_copy(update=lists)}) if lists else state
