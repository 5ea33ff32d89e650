"""Finding an ANVA contract in Elements by the marker in its omschrijving (simulator over ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.clients.elements import ElementsClient
from app.clients.limiter import ElementsLimiter
from app.domain.model import KnownContract
from app.pipeline.contract import find_contract
from app.sandbox.simulators.elements import ElementsSimulator

DOSSIER_NUMBER = "100234"
REF = {"id": 1}


@pytest.fixture
def simulator() -> ElementsSimulator:
    return ElementsSimulator("elements-sync", "s3cret", "4242", rate_limit=10_000)


@pytest.fixture
async def elements(simulator: ElementsSimulator) -> AsyncIterator[ElementsClient]:
    transport = httpx.ASGITransport(app=simulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://elements") as http:
        yield ElementsClient(
            http,
            ElementsLimiter(rate_per_s=10_000, daily_limit=1_000_000, margin_s=0),
            client_id="elements-sync",
            client_secret=SecretStr("s3cret"),
            organisation="4242",
            webservice="data",
            scope="klantdossier.read klantdossier.write",
        )


async def dossier_with_klant(elements: ElementsClient) -> tuple[int, int, int]:
    """A dossier with a particulier klant and an address: (dossier, klant, adres) ids."""
    dossier = await elements.create_dossier(
        {
            "omschrijving": "Test",
            "relatienummer": DOSSIER_NUMBER,
            "dossierstatus": REF,
            "kantoor": REF,
        }
    )
    dossier_id = dossier.resourceId
    klant = await elements.create_klant(
        dossier_id, "particulier", {"achternaam": "Jansen"}, rol="eerste-persoon"
    )
    klant_id = klant.resourceId
    adres = await elements.add_to_klant(
        dossier_id,
        "particulier",
        klant_id,
        "adressen",
        {"plaatsnaam": "Utrecht", "categorie": "Standaard", "type": "Correspondentieadres"},
    )
    return dossier_id, klant_id, adres.resourceId


def contract(
    klant_id: int, adres_id: int, omschrijving: str, contractnummer: str
) -> dict[str, Any]:
    return {
        "omschrijving": omschrijving,
        "status": REF,
        "bestaandePropositie": REF,
        "accountmanager": REF,
        "accountBeheerderWorkflowgroep": REF,
        "bronvermelding": REF,
        "aanvragersParticulier": [{"id": klant_id}],
        "eersteAanvrager": {"id": klant_id},
        "correspondentieadres": {"id": adres_id},
        "contractnummer": contractnummer,
        "contractDatum": "2026-01-01",
        "contractDatumDefinitief": True,
        "startdatum": "2026-01-01",
        "startdatumDefinitief": True,
        "leverancier": REF,
        "inkoopVia": REF,
        "gearchiveerd": False,
        "toonindigimap": False,
    }


async def test_a_contract_is_recognised_by_its_marker_not_a_longer_id_that_starts_alike(
    elements: ElementsClient,
) -> None:
    dossier_id, klant_id, adres_id = await dossier_with_klant(elements)
    await elements.create_contract(
        dossier_id, contract(klant_id, adres_id, "AVP [ANVA 1234]", "123")
    )
    assert await find_contract(elements, DOSSIER_NUMBER, "123") is None

    created = await elements.create_contract(
        dossier_id, contract(klant_id, adres_id, "AVP [ANVA 123]", "123")
    )

    assert await find_contract(elements, DOSSIER_NUMBER, "123") == KnownContract(
        dossier_id, created.resourceId, None
    )


async def test_a_contract_whose_registratie_is_missing_is_found_without_a_fingerprint(
    elements: ElementsClient,
) -> None:
    dossier_id, klant_id, adres_id = await dossier_with_klant(elements)
    created = await elements.create_contract(
        dossier_id, contract(klant_id, adres_id, "AVP [ANVA 9]", "9")
    )

    found = await find_contract(elements, DOSSIER_NUMBER, "9")
    await elements.add_contract_registratie(
        dossier_id,
        created.resourceId,
        {
            "omschrijving": "Contract 9 overgenomen uit ANVA",
            "onderwerp": "elements-sync 9 fp:0123456789ab",
            "activiteit": REF,
            "registratietype": REF,
            "systeemregistratie": True,
        },
    )
    again = await find_contract(elements, DOSSIER_NUMBER, "9")

    assert found is not None and found.fingerprint is None
    assert again is not None and again.fingerprint == "0123456789ab"


async def test_a_contract_in_a_deleted_dossier_counts_only_in_the_live_one_of_its_number(
    elements: ElementsClient, simulator: ElementsSimulator
) -> None:
    deleted, klant_id, adres_id = await dossier_with_klant(elements)
    await elements.create_contract(deleted, contract(klant_id, adres_id, "AVP [ANVA 7]", "7"))
    simulator.delete_dossier(deleted)
    assert await find_contract(elements, DOSSIER_NUMBER, "7") is None

    live, klant_id, adres_id = await dossier_with_klant(elements)
    created = await elements.create_contract(
        live, contract(klant_id, adres_id, "AVP [ANVA 7]", "7")
    )

    assert await find_contract(elements, DOSSIER_NUMBER, "7") == KnownContract(
        live, created.resourceId, None
    )
