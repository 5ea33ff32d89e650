"""`python -m app plan` over the simulators: the worker's own writes, recorded and not sent,
and exactly what the worker then writes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from app.clients.anva import API as ANVA
from app.clients.elements import API as ELEMENTS
from app.clients.portal import API as PORTAL
from app.commands.plan import planned
from app.commands.recording import FIRST_MADE_UP_ID, RecordingTransport
from app.errors import CustomerNotFound, RetryableError
from app.events import CustomerChanged
from app.pipeline.customer import sync_customer
from app.sandbox.core import FAST_RETRY, Core, core_settings

NEW = "/api/data/klantdossiers/{new klantdossier}"


async def plan(core: Core, dossier_number: str) -> list[dict[str, Any]]:
    """The plan's operations, read from the core's simulators."""
    shown = await planned(
        core_settings(contracts=None, retry=FAST_RETRY),
        dossier_number,
        transports={
            ANVA: httpx.ASGITransport(app=core.anva.app),
            PORTAL: httpx.ASGITransport(app=core.portal.app),
            ELEMENTS: httpx.ASGITransport(app=core.elements.app),
        },
    )
    assert shown["dossierNumber"] == dossier_number
    operations = shown["operations"]
    assert isinstance(operations, list)
    return operations


async def sync(core: Core, dossier_number: str) -> None:
    await sync_customer(core.context, CustomerChanged(dossierNumber=dossier_number))


def with_ids(value: Any, ids: Mapping[str, int]) -> Any:
    """`value` with each placeholder replaced by the id Elements gave."""
    if isinstance(value, dict):
        return {key: with_ids(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [with_ids(item, ids) for item in value]
    if isinstance(value, str):
        if value in ids:
            return ids[value]
        for placeholder, real in ids.items():
            value = value.replace(placeholder, str(real))
    return value


def writes_since(core: Core, start: int) -> list[dict[str, Any]]:
    """Elements' writes after its `start`th write, as the plan shows an operation."""
    return [
        {"method": r.method, "path": r.path + (f"?{r.query}" if r.query else ""), "body": r.body}
        for r in core.writes()[start:]
    ]


def created_ids(core: Core, dossier_number: str) -> dict[str, int]:
    dossier = core.dossier(dossier_number)
    return {
        "{new klantdossier}": dossier["id"],
        "{new klant}": core.klant(dossier_number)["id"],
        "{new adres}": dossier["_embedded"]["standaardcorrespondentieadres"]["id"],
    }


async def test_a_new_customer_plan_names_the_ids_it_would_create_by_placeholder_and_sends_no_write(
    core: Core,
) -> None:
    customer = core.seed(0)

    operations = await plan(core, customer.dossier_number)

    klant = f"{NEW}/klanten/particulier/{{new klant}}"
    assert operations == [
        {
            "method": "POST",
            "path": "/api/data/klantdossiers",
            "body": {
                "omschrijving": f"Klantdossier {customer.dossier_number}",
                "relatienummer": customer.dossier_number,
                "dossierstatus": {"id": 1},
                "kantoor": {"id": 1},
            },
        },
        {
            "method": "POST",
            "path": f"{NEW}/klanten/particulier?rol=eerste-persoon",
            "body": {"voornaam": "Jan", "tussenvoegsel": "de", "achternaam": "Vries"},
        },
        {
            "method": "POST",
            "path": f"{klant}/adressen",
            "body": {
                "straat": "Hoofdstraat",
                "nummer": "12",
                "toevoeging": "A",
                "postcode": "1000AB",
                "plaatsnaam": "Amsterdam",
                "land": "NL",
                "categorie": "Standaard",
                "type": "Correspondentieadres",
            },
        },
        {
            "method": "PATCH",
            "path": NEW,
            "body": {"standaardCorrespondentieadres": {"id": "{new adres}"}},
        },
        {
            "method": "POST",
            "path": f"{klant}/emailadressen",
            "body": {"naam": "klant0@example.nl", "type": "Algemeen"},
        },
        {
            "method": "POST",
            "path": f"{klant}/telefoonnummers",
            "body": {"naam": "+31 6 10000000", "type": "Algemeen"},
        },
    ]
    assert core.reads(), "the plan read Elements"
    assert core.writes() == []


@pytest.mark.parametrize("index", [0, 2], ids=["particulier", "zakelijk"])
async def test_the_worker_then_writes_a_new_customer_exactly_as_planned(
    core: Core, index: int
) -> None:
    customer = core.seed(index)
    operations = await plan(core, customer.dossier_number)

    await sync(core, customer.dossier_number)

    ids = created_ids(core, customer.dossier_number)
    assert writes_since(core, 0) == with_ids(operations, ids)


async def test_a_moved_customer_plan_adds_the_address_under_the_klant_and_points_at_it(
    core: Core,
) -> None:
    customer = core.seed(0)
    await sync(core, customer.dossier_number)
    dossier_id = core.dossier(customer.dossier_number)["id"]
    klant_id = core.klant(customer.dossier_number)["id"]
    core.portal.update_customer(
        customer.portal_id, address="Stationsweg 3", zipCode="3511 AB", city="Utrecht"
    )
    start = len(core.writes())

    operations = await plan(core, customer.dossier_number)

    assert [(o["method"], o["path"], o["body"]) for o in operations] == [
        (
            "POST",
            f"/api/data/klantdossiers/{dossier_id}/klanten/particulier/{klant_id}/adressen",
            {
                "straat": "Stationsweg",
                "nummer": "3",
                "postcode": "3511AB",
                "plaatsnaam": "Utrecht",
                "land": "NL",
                "categorie": "Standaard",
                "type": "Correspondentieadres",
            },
        ),
        (
            "PATCH",
            f"/api/data/klantdossiers/{dossier_id}",
            {"standaardCorrespondentieadres": {"id": "{new adres}"}},
        ),
    ]
    assert writes_since(core, start) == []

    await sync(core, customer.dossier_number)

    assert writes_since(core, start) == with_ids(
        operations, created_ids(core, customer.dossier_number)
    )


async def test_a_plan_points_at_an_address_the_klant_holds_by_its_id(core: Core) -> None:
    customer = core.seed(0)
    await sync(core, customer.dossier_number)
    dossier = core.dossier(customer.dossier_number)
    first_adres = dossier["_embedded"]["standaardcorrespondentieadres"]["id"]
    core.portal.update_customer(
        customer.portal_id, address="Stationsweg 3", zipCode="3511 AB", city="Utrecht"
    )
    await sync(core, customer.dossier_number)
    core.portal.update_customer(
        customer.portal_id, address="Hoofdstraat 12-A", zipCode="1000 AB", city="Amsterdam"
    )

    operations = await plan(core, customer.dossier_number)

    assert operations == [
        {
            "method": "PATCH",
            "path": f"/api/data/klantdossiers/{dossier['id']}",
            "body": {"standaardCorrespondentieadres": {"id": first_adres}},
        }
    ]


async def test_a_customer_unknown_upstream_fails_as_its_event_would_before_asking_elements(
    core: Core,
) -> None:
    with pytest.raises(CustomerNotFound, match="999999"):
        await plan(core, "999999")

    assert core.elements.requests == []


async def test_elements_down_makes_a_plan_to_try_again_later(core: Core) -> None:
    customer = core.seed(0)
    core.elements.faults.fail_next(1)

    with pytest.raises(RetryableError):
        await plan(core, customer.dossier_number)


def made_up_id(created: httpx.Response) -> int:
    return int(created.headers["Location"].rsplit("/", 1)[-1])


async def test_the_recorder_sends_reads_and_the_token_request_and_answers_writes_itself() -> None:
    sent: list[str] = []

    def elements(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={})

    recorder = RecordingTransport(httpx.MockTransport(elements))
    async with httpx.AsyncClient(base_url="http://elements", transport=recorder) as client:
        await client.get("/api/data/klantdossiers", params={"access_token": "t"})
        await client.post("/oauth/access_token", data={"grant_type": "organisation"})
        dossier = await client.post(
            "/api/data/klantdossiers", params={"access_token": "t"}, json={"omschrijving": "x"}
        )
        dossier_path = dossier.headers["Location"]
        adressen = f"{dossier_path}/klanten/particulier/7/adressen"
        first = await client.post(adressen, params={"access_token": "t"}, json={})
        second = await client.post(adressen, params={"access_token": "t"}, json={})
        patched = await client.patch(
            dossier_path,
            params={"rol": "eerste-persoon", "access_token": "t"},
            json={"standaardCorrespondentieadres": {"id": made_up_id(second)}},
        )

    assert sent == ["GET /api/data/klantdossiers", "POST /oauth/access_token"]
    assert (dossier.status_code, first.status_code, patched.status_code) == (201, 201, 200)
    assert made_up_id(dossier) >= FIRST_MADE_UP_ID
    new_adressen = f"{NEW}/klanten/particulier/7/adressen"
    assert [w.as_json() for w in recorder.writes] == [
        {"method": "POST", "path": "/api/data/klantdossiers", "body": {"omschrijving": "x"}},
        {"method": "POST", "path": new_adressen, "body": {}},
        {"method": "POST", "path": new_adressen, "body": {}},
        {
            "method": "PATCH",
            "path": f"{NEW}?rol=eerste-persoon",
            "body": {"standaardCorrespondentieadres": {"id": "{new adres 2}"}},
        },
    ]
