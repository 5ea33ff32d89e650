"""Dutch address text → straat / nummer / toevoeging, contact values checked, and compare keys.

The portal keeps an address as one line ("Hoofdstraat 12-A"); Elements wants its parts.
The house number is the last token that starts with a digit: street names may hold
digits themselves ("1e Jan Steenstraat", "Plein 1940-1945"), additions may not start
with one unless glued to the number ("12-3" keeps "3" as toevoeging) — or unless they
follow a short word or a lettered number ("Weg 1 A 2", "12 bus 3", "12A 3"): those
digits belong to the addition. A house number is kept without leading zeros, so "012"
and "12" are one address wherever they come from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from email_validator import EmailNotValidError, validate_email

Categorie = Literal["Standaard", "Postbus", "Antwoordnummer"]

_SEPARATOR_SPACES = re.compile(r"\s*([-/])\s*")
_LEADING_DIGITS = re.compile(r"^([0-9]+)(.*)$")
_ADDITION_WORD = re.compile(r"^[^\W\d_]{1,3}$")
_BOX = re.compile(r"^(postbus|antwoordnummer)\s*(?=[0-9])", re.IGNORECASE)
_BOX_CATEGORIES: dict[str, Categorie] = {"postbus": "Postbus", "antwoordnummer": "Antwoordnummer"}
_POSTCODE = re.compile(r"^\s*(\d{4})\s*([A-Za-z]{2})\s*$")


@dataclass(frozen=True)
class StreetAddress:
    straat: str | None
    nummer: str | None
    toevoeging: str | None


def _tokens(text: str) -> list[str]:
    """Words of `text`, with '-' and '/' glued to their neighbours ('12 - A' → '12-A')."""
    return _SEPARATOR_SPACES.sub(r"\1", " ".join(text.split())).split()


def _digits_without_leading_zeros(digits: str) -> str:
    return digits.lstrip("0") or "0"


def _number_and_addition(tokens: list[str]) -> tuple[str, str | None]:
    """`tokens` start with the house number; the rest (and letters glued to it) is toevoeging."""
    match = _LEADING_DIGITS.match(tokens[0])
    if match is None:
        return " ".join(tokens), None
    glued = match.group(2).lstrip("-/")
    rest = [glued, *tokens[1:]] if glued else tokens[1:]
    toevoeging = " ".join(rest).strip(" -/") or None
    return _digits_without_leading_zeros(match.group(1)), toevoeging


def _continues_addition(number: str, between: list[str]) -> bool:
    """Whether a later number belongs to the toevoeging of `number` ('1 A 2', '12A 3')."""
    if between:
        return all(_ADDITION_WORD.match(word) for word in between)
    return any(c.isalpha() for c in number)


def _box_spaced(text: str) -> str:
    """'postbus1234' → 'Postbus 1234': the category word spelled as Elements' enum has it."""
    return _BOX.sub(lambda m: f"{_BOX_CATEGORIES[m.group(1).lower()]} ", text.strip())


def split_street_address(line: str) -> StreetAddress:
    """Split one address line; a line without a house number is all straat.

    What follows a comma is the place (and maybe a postcode), which the portal keeps in
    fields of their own, so it is not read as a toevoeging. An empty line has no parts.
    """
    tokens = _tokens(_box_spaced(line.split(",", 1)[0]))
    if not tokens:
        return StreetAddress(None, None, None)
    numbered = [i for i in range(1, len(tokens)) if _LEADING_DIGITS.match(tokens[i])]
    if not numbered:
        return StreetAddress(" ".join(tokens), None, None)
    at = numbered.pop()
    while numbered and _continues_addition(tokens[numbered[-1]], tokens[numbered[-1] + 1 : at]):
        at = numbered.pop()
    nummer, toevoeging = _number_and_addition(tokens[at:])
    return StreetAddress(" ".join(tokens[:at]), nummer, toevoeging)


def split_house_number(value: str) -> tuple[str | None, str | None]:
    """A house-number field ('14B', '14-B', '014 b') → nummer and toevoeging, as in a line."""
    tokens = _tokens(value)
    return _number_and_addition(tokens) if tokens else (None, None)


def categorie_of(straat: str | None) -> Categorie:
    """Elements' address category: a Postbus or Antwoordnummer is one by its 'street'.

    Such an address keeps the word as straat and the box number as nummer (see
    `app.domain.model.Adres`), so the straat alone tells the category.
    """
    return _BOX_CATEGORIES.get((straat or "").strip().casefold(), "Standaard")


def house_number_key(nummer: str) -> str:
    """'012' and '12' are one house number; letters compare without case."""
    match = _LEADING_DIGITS.match(nummer.strip())
    if match is None:
        return nummer.strip().casefold()
    return _digits_without_leading_zeros(match.group(1)) + match.group(2).casefold()


def normalise_postcode(postcode: str) -> str:
    """'1234 ab' → '1234AB'; anything that is not a Dutch postcode is only trimmed."""
    match = _POSTCODE.match(postcode)
    return f"{match.group(1)}{match.group(2).upper()}" if match else postcode.strip()


_PHONE_ALLOWED = re.compile(r"[^0-9 ()+-]")
_PHONE_SEPARATORS = re.compile(r"[/,;|&\n]|\s(?:of|or|en|and)\s", re.IGNORECASE)
_DIGITS_IN_ONE_NUMBER = 6
_MAX_PHONE_DIGITS = 17  # E.164's 15 digits after a '00' international prefix
_MAX_PHONE_LENGTH = 255  # the spec's telefoonnummer pattern `^[0-9 ()+-]{1,255}$`


def clean_phone(phone: str) -> str | None:
    """The phone number as Elements accepts it (`^[0-9 ()+-]{1,255}$`), or None if nothing is left."""
    cleaned = " ".join(_PHONE_ALLOWED.sub("", phone).split())
    return cleaned if any(c.isdigit() for c in cleaned) else None


def phone_problem(phone: str) -> str | None:
    """Why `phone` is not one phone number Elements can store, or None when it is.

    Two numbers in one field ('0612345678 / 0201234567', '06… of 020…') would be glued
    into one wrong number by `clean_phone`, so they are refused rather than cleaned.
    """
    parts = [p for p in _PHONE_SEPARATORS.split(phone) if _digit_count(p) >= _DIGITS_IN_ONE_NUMBER]
    if len(parts) > 1:
        return "holds more than one phone number"
    if _digit_count(phone) > _MAX_PHONE_DIGITS:
        return f"holds more digits than one phone number has ({_MAX_PHONE_DIGITS})"
    cleaned = clean_phone(phone)
    if cleaned is None:
        return "holds no phone number"
    if len(cleaned) > _MAX_PHONE_LENGTH:
        return f"is longer than Elements allows ({_MAX_PHONE_LENGTH})"
    return None


def _digit_count(text: str) -> int:
    return sum(c.isdigit() for c in text)


def email_problem(email: str) -> str | None:
    """Why `email` is not one e-mail address, or None when it is (syntax only, no DNS)."""
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return "is not an e-mail address"
    return None


_COUNTRY_CODE = re.compile(r"^(?:\+|00)31(?:\(0\))?")


def phone_key(phone: str) -> str:
    """Digits only, with the Dutch country code (and a '(0)' trunk after it) folded into a 0."""
    compact = re.sub(r"[\s-]", "", phone)
    national, folded = _COUNTRY_CODE.subn("0", compact)
    return re.sub(r"\D", "", national if folded else compact)


def email_key(email: str) -> str:
    return email.strip().casefold()
