"""What a customer should look like in Elements, what Elements holds now, and how they compare.

The comparisons live here, beside the state they compare, because two steps need them:
the read (`current`) reads an address list only when the address is not current, and
the plan (`plan`) decides the same way which writes to make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from app.clients.elements import KlantKind
from app.domain.address import (
    Categorie,
    email_key,
    house_number_key,
    normalise_postcode,
    phone_key,
)

Payload = dict[str, Any]
"""The JSON body of an Elements write."""


@dataclass(frozen=True)
class Adres:
    """An address in Elements' own fields; `key()` is what makes two of them the same.

    A Postbus or Antwoordnummer keeps the word as straat and the box number as nummer
    ("Postbus" / "1234", categorie Postbus). The spec's schema has no field of its own
    for a box number and documents nothing about how a categorie is shown (its examples
    only ever say "default"), so this keeps "Postbus 1234" readable wherever straat and
    nummer are shown — the form prefill too, whose answer then comes back as the same
    address.

    `categorie` is None for an address read from the dossier's embedded
    standaardcorrespondentieadres, which the spec renders without it; it then counts as
    Standaard, the category of nearly every address, and a Postbus or Antwoordnummer is
    confirmed from the klant's address list instead (`read_adressen`).
    """

    straat: str | None
    nummer: str | None
    toevoeging: str | None
    postcode: str | None
    plaatsnaam: str | None
    categorie: Categorie | None = "Standaard"

    def key(self) -> tuple[str, str, str, str, str, str]:
        return (
            self.categorie or "Standaard",
            (self.straat or "").casefold(),
            house_number_key(self.nummer or ""),
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


class KlantState(BaseModel):
    """A klant as read or remembered; a list is None while it is unknown (not read)."""

    model_config = ConfigDict(frozen=True)

    kind: KlantKind
    id: int
    adressen: tuple[StoredAdres, ...] | None = None
    emails: tuple[str, ...] | None = None
    phones: tuple[str, ...] | None = None

    def has_email(self, email: str) -> bool:
        return email_key(email) in {email_key(e) for e in self.emails or []}

    def has_phone(self, phone: str) -> bool:
        return phone_key(phone) in {phone_key(p) for p in self.phones or []}

    def find_adres(self, adres: Adres) -> StoredAdres | None:
        return next((s for s in self.adressen or [] if s.adres.key() == adres.key()), None)


class DossierState(BaseModel):
    """The klantdossier that carries this dossier number, as Elements holds it now: what a
    plan starts from, whether just read or remembered (`app.state.record.DossierRecord` is
    this state and what the worker keeps beside it)."""

    model_config = ConfigDict(frozen=True)

    dossier_number: str
    dossier_id: int
    standaard_adres: StoredAdres | None = None
    klant: KlantState | None = None


def address_is_current(desired: DesiredCustomer, current: DossierState | None) -> bool:
    """Whether the dossier already points at the desired correspondence address."""
    if desired.adres is None:
        return True
    standaard = current.standaard_adres if current else None
    return standaard is not None and standaard.adres.key() == desired.adres.key()


@dataclass(frozen=True)
class KnownContract:
    """Where an ANVA contract lives in Elements and which ANVA state it was last synced from.

    `fingerprint` is None while the contract has no registratie of ours: it was just
    created, or its creation's answer was lost before the "overgenomen" registratie.
    """

    dossier_id: int
    product_id: int
    fingerprint: str | None
    summary: dict[str, str] | None = None
