"""customer.changed's pure half: the customer upstream says Elements should hold
(`desired_customer`), what this sync makes Elements hold (`target_customer`), and the steps
that make a dossier hold it (`plan_customer`). No I/O: all are tested on plain values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog

from app.clients.anva import AnvaAccount
from app.clients.portal import PortalCustomer
from app.domain.address import (
    categorie_of,
    clean_phone,
    email_problem,
    normalise_postcode,
    phone_problem,
    split_street_address,
)
from app.domain.model import (
    Adres,
    DesiredCustomer,
    DossierState,
    Organisatie,
    Payload,
    Persoon,
    address_is_current,
)
from app.errors import CustomerIncomplete, CustomerNotFound
from app.pipeline.apply import (
    AddAdres,
    AddEmail,
    AddPhone,
    CreateDossier,
    CreateKlant,
    Origins,
    SetCorrespondentieadres,
    Step,
)
from app.state.record import DossierRecord

log = structlog.get_logger(__name__)

CUSTOMER_ORIGINS: Origins = {
    "klantdossier.omschrijving": "the dossier number",
    "klantdossier.relatienummer": "the dossier number",
    "klant.voornaam": "ANVA's firstName",
    "klant.tussenvoegsel": "ANVA's middleName",
    "klant.achternaam": "ANVA's lastName",
    "klant.naam": "the portal's companyName",
    "adres.straat": "the portal's address",
    "adres.nummer": "the portal's address",
    "adres.toevoeging": "the portal's address",
    "adres.postcode": "the portal's zipCode",
    "adres.plaatsnaam": "the portal's city",
    "emailadres.naam": "the portal's primaryEmail",
    "telefoonnummer.naam": "the portal's phone",
}


def _text(value: str | None) -> str | None:
    """Trimmed, with runs of whitespace made one space: nothing is lost, nothing left empty."""
    collapsed = " ".join((value or "").split())
    return collapsed or None


def _portal_contact(
    value: str | None, problem: Callable[[str], str | None], field: str
) -> str | None:
    """A usable portal e-mail or phone; a bad one is left out so the rest still syncs."""
    text = _text(value)
    reason = problem(text) if text else None
    if reason is not None:
        log.warning("portal contact value left out", field=field, reason=reason)
        return None
    return text


def portal_adres(customer: PortalCustomer) -> Adres | None:
    """The portal's one-line address split as Elements stores it; None without a city."""
    if _text(customer.city) is None:
        return None
    street = split_street_address(customer.address or "")
    return Adres(
        straat=street.straat,
        nummer=street.nummer,
        toevoeging=street.toevoeging,
        postcode=normalise_postcode(_text(customer.zipCode) or "") or None,
        plaatsnaam=_text(customer.city),
        categorie=categorie_of(street.straat),
    )


def desired_customer(
    dossier_number: str, account: AnvaAccount | None, customer: PortalCustomer | None
) -> DesiredCustomer:
    """A particulier when ANVA knows a person with a last name, else a zakelijk klant."""
    if account is None and customer is None:
        raise CustomerNotFound(f"dossier {dossier_number} is unknown to ANVA and the portal")
    klant: Persoon | Organisatie
    if account is not None and (achternaam := _text(account.lastName)):
        klant = Persoon(
            voornaam=_text(account.firstName),
            tussenvoegsel=_text(account.middleName),
            achternaam=achternaam,
        )
    elif customer is not None and (naam := _text(customer.companyName)):
        klant = Organisatie(naam=naam)
    else:
        raise CustomerIncomplete(
            f"dossier {dossier_number}: ANVA has no last name and the portal no company name"
        )
    if customer is None:
        return DesiredCustomer(dossier_number, klant, adres=None, email=None, phone=None)
    phone = _portal_contact(customer.phone, phone_problem, "phone")
    return DesiredCustomer(
        dossier_number=dossier_number,
        klant=klant,
        adres=portal_adres(customer),
        email=_portal_contact(customer.primaryEmail, email_problem, "primaryEmail"),
        phone=clean_phone(phone) if phone else None,
    )


def target_customer(
    desired: DesiredCustomer, record: DossierRecord | None, current: DossierState | None
) -> DesiredCustomer:
    """What to make Elements hold: the desired values, except an address upstream did not
    change since the last sync, which stays the one Elements holds (`current`).

    That is how a customer's own change through a form stands (docs/reference/events.md, "A
    customer's form stands") until the portal's address changes; e-mail addresses and phone
    numbers are only ever added, so upstream's are wanted whatever a form added beside them. A
    record marked unread says nothing of the last sync (a crash or a failure may have come
    between its writes and its record), so its `upstream` decides nothing.
    """
    last = record.upstream if record is not None and record.read_at > 0 else None
    held = current.standaard_adres if current is not None else None
    if last is None or held is None or _adres_key(desired.adres) != _adres_key(last.adres):
        return desired
    return replace(desired, adres=held.adres)


def _adres_key(adres: Adres | None) -> tuple[str, ...] | None:
    return None if adres is None else adres.key()


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
    target: DesiredCustomer, current: DossierState | None, defaults: DossierDefaults
) -> list[Step]:
    """The writes that make Elements hold `target`; klanten are never duplicated.

    An existing klant of the other kind is kept rather than joined by a second one:
    Elements offers no way to remove a klant, and a dossier has one.
    """
    steps: list[Step] = []
    if current is None:
        steps.append(CreateDossier(dossier_payload(target.dossier_number, defaults)))
    klant = current.klant if current else None
    if klant is None:
        steps.append(CreateKlant(target.kind, klant_payload(target)))
    if target.adres is not None and not address_is_current(target, current):
        existing = klant.find_adres(target.adres) if klant else None
        if existing is not None:
            steps.append(SetCorrespondentieadres(existing.id))
        else:
            steps += [AddAdres(adres_payload(target.adres)), SetCorrespondentieadres(None)]
    if target.email and not (klant and klant.has_email(target.email)):
        steps.append(AddEmail(email_payload(target.email)))
    if target.phone and not (klant and klant.has_phone(target.phone)):
        steps.append(AddPhone(phone_payload(target.phone)))
    return steps
