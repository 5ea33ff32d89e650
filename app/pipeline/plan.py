"""A customer's desired state against Elements' current state → the writes to make (pure).

A plan is a list of steps (`steps`) applied in order. Steps that need an id created
by an earlier step (the new dossier, klant or address) refer to it implicitly, so the
plan can be made before any write and tested without I/O. An empty plan means nothing
changed and costs no write.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.pipeline.model import (
    Adres,
    DesiredCustomer,
    DossierState,
    Payload,
    Persoon,
    address_is_current,
)
from app.pipeline.steps import (
    AddAdres,
    AddEmail,
    AddPhone,
    CreateDossier,
    CreateKlant,
    SetCorrespondentieadres,
    Step,
)


@dataclass(frozen=True)
class DossierDefaults:
    """Fields a new klantdossier needs that no upstream system provides."""

    kantoor_id: int
    dossierstatus_id: int


def _without_empty(payload: Payload) -> Payload:
    """Elements' schemas give strings a minLength of 1: leave out what is empty."""
    return {k: v for k, v in payload.items() if v not in (None, "")}


def dossier_payload(dossier_number: str, defaults: DossierDefaults) -> Payload:
    return {
        "omschrijving": f"Klantdossier {dossier_number}",
        "relatienummer": dossier_number,
        "dossierstatus": {"id": defaults.dossierstatus_id},
        "kantoor": {"id": defaults.kantoor_id},
    }


def klant_payload(desired: DesiredCustomer) -> Payload:
    klant = desired.klant
    if isinstance(klant, Persoon):
        return _without_empty(
            {
                "voornaam": klant.voornaam,
                "tussenvoegsel": klant.tussenvoegsel,
                "achternaam": klant.achternaam,
            }
        )
    return {"naam": klant.naam}


def adres_payload(adres: Adres) -> Payload:
    return _without_empty(
        {
            "straat": adres.straat,
            "nummer": adres.nummer,
            "toevoeging": adres.toevoeging,
            "postcode": adres.postcode,
            "plaatsnaam": adres.plaatsnaam,
            "land": "NL",
            "categorie": adres.categorie or "Standaard",
            "type": "Correspondentieadres",
        }
    )


def email_payload(email: str) -> Payload:
    return {"naam": email, "type": "Algemeen"}


def phone_payload(phone: str) -> Payload:
    return {"naam": phone, "type": "Algemeen"}


def plan_customer(
    desired: DesiredCustomer, current: DossierState | None, defaults: DossierDefaults
) -> list[Step]:
    """The writes that make Elements hold `desired`; klanten are never duplicated.

    An existing klant of the other kind is kept rather than joined by a second one:
    Elements offers no way to remove a klant, and a dossier has one.
    """
    steps: list[Step] = []
    if current is None:
        steps.append(CreateDossier(dossier_payload(desired.dossier_number, defaults)))
    klant = current.klant if current else None
    if klant is None:
        steps.append(CreateKlant(desired.kind, klant_payload(desired)))
    if desired.adres is not None and not address_is_current(desired, current):
        existing = klant.find_adres(desired.adres) if klant else None
        if existing is not None:
            steps.append(SetCorrespondentieadres(existing.id))
        else:
            steps += [AddAdres(adres_payload(desired.adres)), SetCorrespondentieadres(None)]
    if desired.email and not (klant and klant.has_email(desired.email)):
        steps.append(AddEmail(email_payload(desired.email)))
    if desired.phone and not (klant and klant.has_phone(desired.phone)):
        steps.append(AddPhone(phone_payload(desired.phone)))
    return steps
