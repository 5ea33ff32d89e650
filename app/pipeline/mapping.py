"""ANVA account + portal customer → the desired Elements state (pure)."""

from __future__ import annotations

from app.address import clean_phone, normalise_postcode, split_street_address
from app.clients.anva import AnvaAccount
from app.clients.portal import PortalCustomer
from app.errors import CustomerIncomplete, CustomerNotFound
from app.pipeline.model import Adres, DesiredCustomer, Organisatie, Persoon


def _text(value: str | None) -> str | None:
    stripped = (value or "").strip()
    return stripped or None


def portal_adres(customer: PortalCustomer) -> Adres | None:
    """The portal's one-line address split as Elements stores it; None without a city."""
    if _text(customer.city) is None:
        return None
    street = split_street_address(customer.address or "")
    return Adres(
        straat=_text(street.straat),
        nummer=street.nummer,
        toevoeging=street.toevoeging,
        postcode=normalise_postcode(customer.zipCode or "") or None,
        plaatsnaam=_text(customer.city),
    )


def desired_customer(
    dossier_number: str, account: AnvaAccount | None, customer: PortalCustomer | None
) -> DesiredCustomer:
    """A particulier when ANVA knows a person with a last name, else a zakelijk klant."""
    if account is None and customer is None:
        raise CustomerNotFound(f"dossier {dossier_number} is unknown to ANVA and the portal")
    klant: Persoon | Organisatie
    if account is not None and _text(account.lastName):
        klant = Persoon(
            voornaam=_text(account.firstName),
            tussenvoegsel=_text(account.middleName),
            achternaam=account.lastName.strip(),  # type: ignore[union-attr]
        )
    elif customer is not None and _text(customer.companyName):
        klant = Organisatie(naam=customer.companyName.strip())  # type: ignore[union-attr]
    else:
        raise CustomerIncomplete(
            f"dossier {dossier_number}: ANVA has no last name and the portal no company name"
        )
    return DesiredCustomer(
        dossier_number=dossier_number,
        klant=klant,
        adres=portal_adres(customer) if customer else None,
        email=_text(customer.primaryEmail) if customer else None,
        phone=clean_phone(customer.phone or "") if customer else None,
    )
