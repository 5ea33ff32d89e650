"""What a customer should look like in Elements, and what Elements holds now."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from app.address import email_key, normalise_postcode, phone_key

KlantKind = Literal["particulier", "zakelijk"]


@dataclass(frozen=True)
class Adres:
    """An address in Elements' own fields; `key()` is what makes two of them the same."""

    straat: str | None
    nummer: str | None
    toevoeging: str | None
    postcode: str | None
    plaatsnaam: str | None

    def key(self) -> tuple[str, str, str, str, str]:
        return (
            (self.straat or "").casefold(),
            (self.nummer or "").casefold(),
            (self.toevoeging or "").casefold().replace(" ", ""),
            normalise_postcode(self.postcode or ""),
            (self.plaatsnaam or "").casefold(),
        )


@dataclass(frozen=True)
class Persoon:
    voornaam: str | None
    tussenvoegsel: str | None
    achternaam: str


@dataclass(frozen=True)
class Organisatie:
    naam: str


@dataclass(frozen=True)
class DesiredCustomer:
    """The target state of one klantdossier, built from ANVA and the portal."""

    dossier_number: str
    klant: Persoon | Organisatie
    adres: Adres | None
    email: str | None
    phone: str | None

    @property
    def kind(self) -> KlantKind:
        return "particulier" if isinstance(self.klant, Persoon) else "zakelijk"


@dataclass(frozen=True)
class StoredAdres:
    id: int
    adres: Adres


@dataclass
class KlantState:
    """A klant as read; contact lists are None when they were not read."""

    kind: KlantKind
    id: int
    adressen: list[StoredAdres] | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)

    def has_email(self, email: str) -> bool:
        return email_key(email) in {email_key(e) for e in self.emails}

    def has_phone(self, phone: str) -> bool:
        return phone_key(phone) in {phone_key(p) for p in self.phones}

    def find_adres(self, adres: Adres) -> StoredAdres | None:
        return next((s for s in self.adressen or [] if s.adres.key() == adres.key()), None)


@dataclass
class DossierState:
    """The klantdossier with this relatienummer, as Elements holds it now."""

    id: int
    relatienummer: str
    standaard_adres: StoredAdres | None
    klant: KlantState | None
