"""A form's fields as changes to the dossier: split, checked and named like the portal's."""

from __future__ import annotations

from typing import Any

import pytest

from app.clients.portal import PortalCustomer
from app.domain.model import Adres
from app.errors import InvalidCustomerData, InvalidFormField
from app.pipeline.apply import AddAdres, check_lengths
from app.pipeline.customer_plan import portal_adres
from app.pipeline.form import FormChanges

STORED = Adres("Hoofdstraat", "14", "B", "1234AB", "Amsterdam")


def changes(**fields: Any) -> FormChanges:
    return FormChanges.from_fields(fields)


@pytest.mark.parametrize("house_number", ["14B", "14-B", "14 b", "014b", " 14 - B "])
def test_a_house_number_with_its_letter_is_the_stored_address(house_number: str) -> None:
    adres = changes(houseNumber=house_number).adres_over(STORED)
    assert adres is not None
    assert (adres.nummer, adres.toevoeging) == ("14", house_number.strip()[-1])
    assert adres.key() == STORED.key()


def test_a_form_house_number_splits_like_the_portal_line() -> None:
    customer = PortalCustomer.model_validate(
        {"id": "c-1", "address": "Hoofdstraat 14B", "zipCode": "1234AB", "city": "Amsterdam"}
    )
    from_portal = portal_adres(customer)
    assert from_portal is not None
    from_form = changes(street="Hoofdstraat", houseNumber="14B").adres_over(from_portal)
    assert from_form == from_portal


def test_an_explicit_addition_wins_over_letters_typed_after_the_number() -> None:
    adres = changes(houseNumber="14B", houseNumberAddition="B").adres_over(STORED)
    assert adres is not None
    assert (adres.nummer, adres.toevoeging) == ("14", "B")
    other = changes(houseNumber="14B", houseNumberAddition="2").adres_over(STORED)
    assert other is not None
    assert (other.nummer, other.toevoeging) == ("14", "2")


def test_a_new_house_number_drops_the_old_addition() -> None:
    adres = changes(houseNumber="16").adres_over(STORED)
    assert adres is not None
    assert (adres.straat, adres.nummer, adres.toevoeging) == ("Hoofdstraat", "16", None)


def test_postbus_typed_as_street_makes_a_postbus_address() -> None:
    adres = changes(street="postbus", houseNumber="1234").adres_over(STORED)
    assert adres is not None
    assert (adres.nummer, adres.toevoeging, adres.categorie) == ("1234", None, "Postbus")


def test_changing_the_postcode_of_a_postbus_keeps_it_a_postbus() -> None:
    """The dossier's embedded address carries no categorie; its straat tells it."""
    held = Adres("Postbus", "1234", None, "1000AB", "Amsterdam", categorie=None)
    adres = changes(postcode="1001 AB").adres_over(held)
    assert adres is not None
    assert (adres.postcode, adres.categorie) == ("1001AB", "Postbus")


@pytest.mark.parametrize(
    "email", ["piet", "piet@example", "piet@example.nl, jan@example.nl", "piet @example.nl"]
)
def test_an_email_that_is_not_one_fails_naming_the_field(email: str) -> None:
    with pytest.raises(InvalidFormField) as raised:
        changes(email=email)
    assert str(raised.value) == "form field email is not an e-mail address"
    assert email not in str(raised.value), "results do not repeat personal data"
    assert raised.value.code == "invalid_form_field"


@pytest.mark.parametrize(
    "phone", ["0612345678 / 0201234567", "06-1234 5678, 020-1234567", "0612345678 of 0201234567"]
)
def test_a_phone_holding_two_numbers_fails_naming_the_field(phone: str) -> None:
    with pytest.raises(InvalidFormField) as raised:
        changes(phone=phone)
    assert str(raised.value) == "form field phone holds more than one phone number"


def test_a_phone_without_digits_fails_naming_the_field() -> None:
    with pytest.raises(InvalidFormField, match=r"^form field phone holds no phone number$"):
        changes(phone="geen")


def test_a_valid_email_and_phone_are_taken_trimmed_and_cleaned() -> None:
    form = changes(email=" piet@example.nl ", phone="tel. 06 1234  5678")
    assert (form.email, form.phone) == ("piet@example.nl", "06 1234 5678")


def test_an_empty_email_changes_nothing_and_is_named_ignored() -> None:
    form = changes(email="  ", newsletter=True)
    assert form.email is None
    assert form.ignored == ["email", "newsletter"]


def test_an_address_without_any_city_fails_naming_city() -> None:
    with pytest.raises(InvalidFormField, match=r"^form field city is missing"):
        changes(street="Kerkstraat").adres_over(None)


def test_a_too_long_house_number_fails_naming_the_form_field() -> None:
    form = changes(houseNumber="1" * 41)
    adres = form.adres_over(STORED)
    assert adres is not None
    with pytest.raises(InvalidCustomerData) as raised:
        check_lengths([AddAdres({"nummer": adres.nummer})], form.origins())
    assert str(raised.value) == (
        "adres.nummer from form field houseNumber is 41 characters; Elements allows 25"
    )


def test_origins_name_only_the_submitted_fields() -> None:
    origins = changes(houseNumber="14B", city="Utrecht").origins()
    assert origins["adres.nummer"] == "form field houseNumber"
    assert origins["adres.toevoeging"] == "form field houseNumber"
    assert origins["adres.plaatsnaam"] == "form field city"
    assert origins["adres.straat"] == "the portal's address"
    with_addition = changes(houseNumber="14", houseNumberAddition="B").origins()
    assert with_addition["adres.toevoeging"] == "form field houseNumberAddition"
