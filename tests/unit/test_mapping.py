"""ANVA account + portal customer → the desired Elements state."""

from __future__ import annotations

from typing import Any

import pytest

from app.clients.anva import AnvaAccount
from app.clients.portal import PortalCustomer
from app.errors import CustomerIncomplete, CustomerNotFound
from app.pipeline.mapping import desired_customer, portal_adres
from app.pipeline.model import Adres, Organisatie, Persoon

DOSSIER = "100234"


def account(**fields: Any) -> AnvaAccount:
    return AnvaAccount.model_validate({"id": "7", **fields})


def portal(**fields: Any) -> PortalCustomer:
    defaults = {
        "id": "c-1",
        "address": "Hoofdstraat 12-A",
        "zipCode": "1234 ab",
        "city": "Amsterdam",
        "primaryEmail": "piet@example.nl",
        "phone": "06-12345678",
    }
    return PortalCustomer.model_validate({**defaults, **fields})


def test_account_with_last_name_gives_particulier_with_tussenvoegsel() -> None:
    anva = account(firstName="Piet", middleName="van", lastName="Jansen")
    desired = desired_customer(DOSSIER, anva, portal())
    assert desired.kind == "particulier"
    assert desired.klant == Persoon(voornaam="Piet", tussenvoegsel="van", achternaam="Jansen")


def test_particulier_name_parts_are_trimmed_and_blank_parts_become_none() -> None:
    anva = account(firstName="  ", middleName="", lastName=" Jansen ")
    desired = desired_customer(DOSSIER, anva, None)
    assert desired.klant == Persoon(voornaam=None, tussenvoegsel=None, achternaam="Jansen")


def test_last_name_wins_over_company_name() -> None:
    desired = desired_customer(DOSSIER, account(lastName="Jansen"), portal(companyName="Acme BV"))
    assert desired.kind == "particulier"


@pytest.mark.parametrize(
    "anva",
    [
        pytest.param(None, id="no-account"),
        pytest.param(account(lastName="   "), id="blank-last-name"),
        pytest.param(account(firstName="Piet"), id="no-last-name"),
    ],
)
def test_without_last_name_company_name_gives_zakelijk(anva: AnvaAccount | None) -> None:
    desired = desired_customer(DOSSIER, anva, portal(companyName=" Acme BV "))
    assert desired.kind == "zakelijk"
    assert desired.klant == Organisatie(naam="Acme BV")


def test_customer_unknown_to_both_raises_customer_not_found() -> None:
    with pytest.raises(CustomerNotFound, match=DOSSIER):
        desired_customer(DOSSIER, None, None)


@pytest.mark.parametrize(
    ("anva", "customer"),
    [
        pytest.param(account(firstName="Piet"), None, id="account-without-last-name"),
        pytest.param(None, portal(), id="portal-without-company-name"),
        pytest.param(account(), portal(companyName="  "), id="blank-company-name"),
    ],
)
def test_customer_without_any_name_raises_customer_incomplete(
    anva: AnvaAccount | None, customer: PortalCustomer | None
) -> None:
    with pytest.raises(CustomerIncomplete, match=DOSSIER):
        desired_customer(DOSSIER, anva, customer)


def test_portal_address_is_split_and_postcode_normalised() -> None:
    desired = desired_customer(DOSSIER, account(lastName="Jansen"), portal())
    assert desired.adres == Adres(
        straat="Hoofdstraat",
        nummer="12",
        toevoeging="A",
        postcode="1234AB",
        plaatsnaam="Amsterdam",
    )


def test_portal_contact_data_is_taken_with_phone_cleaned() -> None:
    customer = portal(primaryEmail=" piet@example.nl ", phone="tel. 06 1234 5678")
    desired = desired_customer(DOSSIER, account(lastName="Jansen"), customer)
    assert desired.email == "piet@example.nl"
    assert desired.phone == "06 1234 5678"


def test_phone_without_digits_and_blank_email_become_none() -> None:
    desired = desired_customer(
        DOSSIER, account(lastName="Jansen"), portal(primaryEmail=" ", phone="n.v.t.")
    )
    assert (desired.email, desired.phone) == (None, None)


def test_no_portal_customer_means_no_address_email_or_phone() -> None:
    desired = desired_customer(DOSSIER, account(lastName="Jansen"), None)
    assert (desired.adres, desired.email, desired.phone) == (None, None, None)
    assert desired.dossier_number == DOSSIER


@pytest.mark.parametrize("city", [None, "", "   "], ids=["none", "empty", "blank"])
def test_portal_adres_without_city_is_none(city: str | None) -> None:
    assert portal_adres(portal(city=city)) is None


def test_portal_adres_without_street_line_keeps_postcode_and_city() -> None:
    adres = portal_adres(portal(address=None, zipCode=None))
    assert adres == Adres(
        straat=None, nummer=None, toevoeging=None, postcode=None, plaatsnaam="Amsterdam"
    )
