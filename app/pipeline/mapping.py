"""ANVA account + portal customer → the desired Elements state (pure but for a warning log)."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from app.clients.anva import AnvaAccount
from app.clients.portal import PortalCustomer
from app.errors import CustomerIncomplete, CustomerNotFound
from app.pipeline.address import (
    categorie_of,
    clean_phone,
    email_problem,
    normalise_postcode,
    phone_problem,
    split_street_address,
)
from app.pipeline.limits import Origins
from app.pipeline.model import Adres, DesiredCustomer, Organisatie, Persoon

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
