"""form.submitted: the fields a customer changed in a portal form, as changes to the dossier (pure).

Only the submitted fields change anything: an e-mail or phone number is added when
the klant lacks it; address fields are laid over the dossier's current standaard
correspondentieadres, so a form that changes only the house number keeps the street.
An empty value changes nothing (Elements offers no way to remove a value).

A houseNumber is split as the portal's address line is ("14B", "14-B", "014 b" → 14 + B),
so the address a form gives and the one the portal gives compare equal. A
houseNumberAddition in the same form wins over letters typed after the number: the
prefill fills both fields, and "14B" next to an addition "B" means one B, not "B B".
An e-mail that is not one, or a phone field holding two numbers, fails the form before
anything is read or written, with a message naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.errors import InvalidFormField
from app.pipeline.address import (
    categorie_of,
    clean_phone,
    email_problem,
    normalise_postcode,
    phone_problem,
    split_house_number,
)
from app.pipeline.limits import Origins
from app.pipeline.mapping import CUSTOMER_ORIGINS
from app.pipeline.model import Adres

CONTACT_FIELDS = ("email", "phone")
ADDRESS_FIELDS = ("street", "houseNumber", "houseNumberAddition", "postcode", "city")
FORM_FIELDS = CONTACT_FIELDS + ADDRESS_FIELDS

_ADRES_SOURCES = {
    "adres.straat": ("street",),
    "adres.nummer": ("houseNumber",),
    "adres.toevoeging": ("houseNumberAddition", "houseNumber"),
    "adres.postcode": ("postcode",),
    "adres.plaatsnaam": ("city",),
}
"""The form fields an address part is taken from, the one that wins first."""


def _value(raw: Any) -> str | None:
    """The field as text, trimmed and with runs of whitespace made one space."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    return " ".join(str(raw).split()) or None


def _checked_email(email: str | None) -> str | None:
    if email and (reason := email_problem(email)):
        raise InvalidFormField(f"form field email {reason}")
    return email


def _checked_phone(phone: str | None) -> str | None:
    if phone and (reason := phone_problem(phone)):
        raise InvalidFormField(f"form field phone {reason}")
    return clean_phone(phone) if phone else None


@dataclass(frozen=True)
class FormChanges:
    email: str | None = None
    phone: str | None = None
    address: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> FormChanges:
        """Known fields with a usable value; everything else is named in `ignored`.

        Raises `InvalidFormField` for an e-mail or phone that is not one.
        """
        values = {name: _value(raw) for name, raw in fields.items()}
        ignored = sorted(n for n, v in values.items() if n not in FORM_FIELDS or v is None)
        return cls(
            email=_checked_email(values.get("email")),
            phone=_checked_phone(values.get("phone")),
            address={n: v for n in ADDRESS_FIELDS if (v := values.get(n))},
            ignored=ignored,
        )

    def origins(self) -> Origins:
        """Where each address part comes from: the form field that gave it, else upstream."""
        submitted = {
            part: f"form field {given[0]}"
            for part, names in _ADRES_SOURCES.items()
            if (given := [n for n in names if n in self.address])
        }
        return {**CUSTOMER_ORIGINS, **submitted}

    def adres_over(self, base: Adres | None) -> Adres | None:
        """The submitted address parts over `base`; None when the form has no address field.

        The categorie follows the resulting straat ("Postbus" makes a Postbus address).
        """
        if not self.address:
            return None
        given = self.address
        moved = "street" in given or "houseNumber" in given
        keep_toevoeging = base.toevoeging if base is not None and not moved else None
        if "houseNumber" in given:
            nummer, typed_toevoeging = split_house_number(given["houseNumber"])
        else:
            nummer, typed_toevoeging = (base.nummer if base else None), None
        plaatsnaam = given.get("city") or (base.plaatsnaam if base else None)
        if plaatsnaam is None:
            raise InvalidFormField(
                "form field city is missing: the form changes the address and no city is known"
            )
        straat = given.get("street") or (base.straat if base else None)
        postcode = given.get("postcode")
        return Adres(
            straat=straat,
            nummer=nummer,
            toevoeging=given.get("houseNumberAddition") or typed_toevoeging or keep_toevoeging,
            postcode=normalise_postcode(postcode)
            if postcode
            else (base.postcode if base else None),
            plaatsnaam=plaatsnaam,
            categorie=categorie_of(straat),
        )
