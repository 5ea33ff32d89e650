"""ANVA account + portal customer → the desired Elements state."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from app.clients.anva import AnvaAccount
from app.clients.portal import PortalCustomer
from app.domain.model import Adres, Organisatie, Persoon
from app.errors import CustomerIncomplete, CustomerNotFound
from app.pipeline.customer_plan import desired_customer, portal_adres

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


def test_portal_postbus_becomes_a_postbus_address() -> None:
    adres = portal_adres(portal(address="Postbus 1234", zipCode="1000 AB"))
    assert adres == Adres(
        straat="Postbus",
        nummer="1234",
        toevoeging=None,
        postcode="1000AB",
        plaatsnaam="Amsterdam",
        categorie="Postbus",
    )


def test_portal_antwoordnummer_becomes_an_antwoordnummer_address() -> None:
    adres = portal_adres(portal(address="antwoordnummer 567"))
    assert adres is not None
    assert (adres.straat, adres.nummer, adres.categorie) == (
        "Antwoordnummer",
        "567",
        "Antwoordnummer",
    )


def test_portal_street_address_is_standaard() -> None:
    adres = portal_adres(portal())
    assert adres is not None
    assert adres.categorie == "Standaard"


def test_portal_blank_address_line_invents_no_street() -> None:
    adres = portal_adres(portal(address="   "))
    assert adres is not None
    assert (adres.straat, adres.nummer, adres.toevoeging) == (None, None, None)


def test_whitespace_runs_in_portal_and_anva_text_become_one_space() -> None:
    desired = desired_customer(
        DOSSIER,
        account(firstName="Jan  Piet", lastName=" de   Vries "),
        portal(city="Den   Haag", address="Laan  van   Meerdervoort 1001 B"),
    )
    assert desired.klant == Persoon(voornaam="Jan Piet", tussenvoegsel=None, achternaam="de Vries")
    assert desired.adres is not None
    assert (desired.adres.straat, desired.adres.plaatsnaam) == ("Laan van Meerdervoort", "Den Haag")


@pytest.mark.parametrize(
    ("fields", "left_out", "reason"),
    [
        pytest.param(
            {"primaryEmail": "piet(at)example.nl"},
            "primaryEmail",
            "is not an e-mail address",
            id="bad-email",
        ),
        pytest.param(
            {"phone": "0612345678 / 0201234567"},
            "phone",
            "holds more than one phone number",
            id="two-phones",
        ),
    ],
)
def test_a_bad_portal_contact_value_is_left_out_with_a_warning_and_the_rest_kept(
    fields: dict[str, str], left_out: str, reason: str
) -> None:
    with structlog.testing.capture_logs() as logs:
        desired = desired_customer(DOSSIER, account(lastName="Jansen"), portal(**fields))
    kept = {"primaryEmail": desired.email, "phone": desired.phone}
    assert kept.pop(left_out) is None
    assert all(kept.values())
    assert desired.adres is not None
    assert logs == [
        {
            "event": "portal contact value left out",
            "field": left_out,
            "reason": reason,
            "log_level": "warning",
        }
    ]
