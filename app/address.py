"""Dutch address text → straat / nummer / toevoeging, and the keys we compare contact data by.

The portal keeps an address as one line ("Hoofdstraat 12-A"); Elements wants its parts.
The house number is the last token that starts with a digit: street names may hold
digits themselves ("1e Jan Steenstraat", "Plein 1940-1945"), additions may not start
with one unless glued to the number ("12-3" keeps "3" as toevoeging).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEPARATOR_SPACES = re.compile(r"\s*([-/])\s*")
_LEADING_DIGITS = re.compile(r"^(\d+)(.*)$")
_POSTCODE = re.compile(r"^\s*(\d{4})\s*([A-Za-z]{2})\s*$")


@dataclass(frozen=True)
class StreetAddress:
    straat: str
    nummer: str | None
    toevoeging: str | None


def split_street_address(line: str) -> StreetAddress:
    """Split one address line; a line without a house number is all straat."""
    text = _SEPARATOR_SPACES.sub(r"\1", " ".join(line.split()))
    tokens = text.split(" ")
    for index in range(len(tokens) - 1, 0, -1):
        match = _LEADING_DIGITS.match(tokens[index])
        if match is None:
            continue
        glued = match.group(2).lstrip("-/")
        rest = [glued, *tokens[index + 1 :]] if glued else tokens[index + 1 :]
        toevoeging = " ".join(rest).strip(" -/") or None
        return StreetAddress(" ".join(tokens[:index]), match.group(1), toevoeging)
    return StreetAddress(text, None, None)


def normalise_postcode(postcode: str) -> str:
    """'1234 ab' → '1234AB'; anything that is not a Dutch postcode is only trimmed."""
    match = _POSTCODE.match(postcode)
    return f"{match.group(1)}{match.group(2).upper()}" if match else postcode.strip()


_PHONE_ALLOWED = re.compile(r"[^0-9 ()+-]")


def clean_phone(phone: str) -> str | None:
    """The phone number as Elements accepts it (`^[0-9 ()+-]{1,255}$`), or None if nothing is left."""
    cleaned = " ".join(_PHONE_ALLOWED.sub("", phone).split())[:255]
    return cleaned if any(c.isdigit() for c in cleaned) else None


_COUNTRY_CODE = re.compile(r"^(?:\+|00)31(?:\(0\))?")


def phone_key(phone: str) -> str:
    """Digits only, with the Dutch country code (and a '(0)' trunk after it) folded into a 0."""
    compact = re.sub(r"[\s-]", "", phone)
    national, folded = _COUNTRY_CODE.subn("0", compact)
    return re.sub(r"\D", "", national if folded else compact)


def email_key(email: str) -> str:
    return email.strip().casefold()
