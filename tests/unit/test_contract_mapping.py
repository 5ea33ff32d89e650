"""ANVA contract → Elements contract payload: the marker that finds it again, dates, aanvragers."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from app.clients.anva import AnvaContract
from app.pipeline.contract_plan import (
    Aanvragers,
    carries_marker,
    contract_dates,
    contract_omschrijving,
    contract_payload,
    medewerker_payload,
)
from app.sandbox.tenant import sandbox_contracts

TODAY = date(2026, 3, 2)


def anva_contract(contract_id: str = "123", **metadata: Any) -> AnvaContract:
    return AnvaContract(
        id=contract_id, dossierNumber="100234", format="ZPP", metadata=metadata, status="Lopend"
    )


def test_omschrijving_ends_in_the_marker_of_the_anva_contract_id() -> None:
    contract = anva_contract(omschrijving="Aansprakelijkheid particulier")

    assert contract_omschrijving(contract) == "Aansprakelijkheid particulier [ANVA 123]"


def test_a_long_description_is_trimmed_and_the_marker_kept_within_255_characters() -> None:
    contract = anva_contract("K-987654", omschrijving="x" * 300)

    omschrijving = contract_omschrijving(contract)

    assert len(omschrijving) == 255
    assert omschrijving == "x" * 239 + " [ANVA K-987654]"
    assert carries_marker(omschrijving, "K-987654")


def test_without_a_description_the_format_and_id_describe_the_contract() -> None:
    assert contract_omschrijving(anva_contract()) == "ZPP 123 [ANVA 123]"


@pytest.mark.parametrize(
    ("omschrijving", "contract_id", "expected"),
    [
        ("AVP [ANVA 123]", "123", True),
        ("[ANVA 123]", "123", True),
        ("AVP [ANVA 123] (aangepast)", "123", True),
        ("AVP [ANVA 1234]", "123", False),
        ("AVP [ANVA 123]", "1234", False),
        ("AVP [ANVA 0123]", "123", False),
        ("AVP [ANVA 123]]", "123", False),
        ("AVP x[ANVA 123]", "123", False),
        ("AVP 123", "123", False),
        ("", "123", False),
        (None, "123", False),
    ],
)
def test_the_marker_matches_exactly_its_own_contract_id(
    omschrijving: str | None, contract_id: str, expected: bool
) -> None:
    assert carries_marker(omschrijving, contract_id) is expected


def test_dates_anva_gives_are_sent_as_final() -> None:
    contract = anva_contract(contractDatum="2025-12-15", ingangsdatum="2026-01-01")

    assert contract_dates(contract, TODAY) == {
        "contractDatum": "2025-12-15",
        "contractDatumDefinitief": True,
        "startdatum": "2026-01-01",
        "startdatumDefinitief": True,
    }


def test_without_dates_from_anva_today_is_sent_as_not_final() -> None:
    assert contract_dates(anva_contract(omschrijving="AVP"), TODAY) == {
        "contractDatum": "2026-03-02",
        "contractDatumDefinitief": False,
        "startdatum": "2026-03-02",
        "startdatumDefinitief": False,
    }


def test_each_date_is_final_only_when_anva_gives_that_one() -> None:
    dates = contract_dates(anva_contract(startDate="2026-01-01"), TODAY)

    assert (dates["startdatum"], dates["startdatumDefinitief"]) == ("2026-01-01", True)
    assert (dates["contractDatum"], dates["contractDatumDefinitief"]) == ("2026-03-02", False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-01", "2026-01-01"),
        ("2026-01-01T10:00:00", "2026-01-01"),
        ("2025-12-31T23:30:00+00:00", "2026-01-01"),
        ("31-12-2025", "2025-12-31"),
    ],
)
def test_anva_dates_are_read_as_iso_or_dutch_dates(value: str, expected: str) -> None:
    assert contract_dates(anva_contract(contractdatum=value), TODAY)["contractDatum"] == expected


@pytest.mark.parametrize("value", ["2026-13-01", "morgen", "", 20260101, None])
def test_a_date_that_is_no_date_counts_as_not_given(value: object) -> None:
    dates = contract_dates(anva_contract(startdatum=value), TODAY)

    assert (dates["startdatum"], dates["startdatumDefinitief"]) == ("2026-03-02", False)


def test_particulier_contract_names_the_klant_as_aanvrager_and_eerste_aanvrager() -> None:
    payload = {
        **contract_payload(
            anva_contract(omschrijving="AVP"), adres_id=9, settings=sandbox_contracts(), today=TODAY
        ),
        **Aanvragers(7).payload(),
    }

    assert payload["aanvragersParticulier"] == [{"id": 7}]
    assert payload["eersteAanvrager"] == {"id": 7}
    assert "aanvragerZakelijk" not in payload
    assert (payload["omschrijving"], payload["contractnummer"]) == ("AVP [ANVA 123]", "123")


def test_zakelijk_contract_names_the_organisation_and_its_medewerker_as_eerste_aanvrager() -> None:
    payload = {
        **contract_payload(anva_contract(), adres_id=9, settings=sandbox_contracts(), today=TODAY),
        **Aanvragers(12, organisatie_id=5).payload(),
    }

    assert payload["aanvragerZakelijk"] == {"id": 5}
    assert payload["eersteAanvrager"] == {"id": 12}
    assert "aanvragersParticulier" not in payload


def test_a_medewerker_created_by_the_plan_is_named_eerste_aanvrager_once_its_id_is_known() -> None:
    aanvragers = Aanvragers(None, organisatie_id=5)

    assert aanvragers.payload(created_medewerker_id=31) == {
        "aanvragerZakelijk": {"id": 5},
        "eersteAanvrager": {"id": 31},
    }
    with pytest.raises(RuntimeError):
        aanvragers.payload()


def test_medewerker_payload_adds_the_configured_functie() -> None:
    settings = sandbox_contracts(medewerker_functie_id=4)

    assert medewerker_payload({"achternaam": "Groen", "voornaam": "Piet"}, settings) == {
        "achternaam": "Groen",
        "voornaam": "Piet",
        "functie": [{"id": 4}],
    }
