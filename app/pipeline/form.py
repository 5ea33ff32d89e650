"""form.submitted: the fields a customer changed in a portal form, as changes to the dossier (pure).

Only the submitted fields change anything: an e-mail or phone number is added when
the klant lacks it; address fields are laid over the dossier's current standaard
correspondentieadres, so a form that changes only the house number keeps the street.
An empty value changes nothing (Elements offers no way to remove a value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.address import clean_phone, normalise_postcode
from app.errors import PermanentError
from app.pipeline.model import Adres

CONTACT_FIELDS = ("email", "phone")
ADDRESS_FIELDS = ("street", "houseNumber", "houseNumberAddition", "postcode", "city")
FORM_FIELDS = CONTACT_FIELDS + ADDRESS_FIELDS


def _value(raw: Any) -> str | None:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    text = str(raw).strip()
    return text or None


@dataclass(frozen=True)
class FormChanges:
    email: str | None = None
    phone: str | None = None
    address: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> FormChanges:
        """Known fields with a usable value; everything else is named in `ignored`."""
        values = {name: _value(raw) for name, raw in fields.items()}
        ignored = sorted(n for n, v in values.items() if n not in FORM_FIELDS or v is None)
        phone = values.get("phone")
        return cls(
            email=values.get("email"),
            phone=clean_phone(phone) if phone else None,
            address={n: v for n in ADDRESS_FIELDS if (v := values.get(n))},
            ignored=ignored,
        )

    def adres_over(self, base: Adres | None) -> Adres | None:
        """The submitted address parts over `base`; None when the form has no address field."""
        if not self.address:
            return None
        given = self.address
        moved = "street" in given or "houseNumber" in given
        keep_toevoeging = base.toevoeging if base is not None and not moved else None
        plaatsnaam = given.get("city") or (base.plaatsnaam if base else None)
        if plaatsnaam is None:
            raise PermanentError("the form changes the address but no city is known for it")
        postcode = given.get("postcode")
        return Adres(
            straat=given.get("street") or (base.straat if base else None),
            nummer=given.get("houseNumber") or (base.nummer if base else None),
            toevoeging=given.get("houseNumberAddition") or keep_toevoeging,
            postcode=normalise_postcode(postcode)
            if postcode
            else (base.postcode if base else None),
            plaatsnaam=plaatsnaam,
        )
