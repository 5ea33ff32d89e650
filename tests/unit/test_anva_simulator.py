"""The ANVA Hub simulator answers as `specs/anva-hub-customer-api.txt` describes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from app.sandbox.simulators.anva import AnvaSimulator

TOKEN = "anva-token"


@pytest.fixture
def anva() -> AnvaSimulator:
    return AnvaSimulator(token=TOKEN)


@pytest.fixture
async def client(anva: AnvaSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=anva.app),
        base_url="http://anva.test/api",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client


def add_jansen(anva: AnvaSimulator) -> None:
    anva.add_account(
        account_id=7,
        first_name="Piet",
        middle_name="van",
        last_name="Jansen",
        email="piet@example.nl",
        dossiers={"org-1": "100234"},
    )


async def test_account_mine_lists_accounts_in_the_spec_shape(
    anva: AnvaSimulator, client: httpx.AsyncClient
) -> None:
    add_jansen(anva)

    response = await client.get("/account/mine")

    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "items": [
                {
                    "id": 7,
                    "name": "piet@example.nl",
                    "email": "piet@example.nl",
                    "firstName": "Piet",
                    "middleName": "van",
                    "lastName": "Jansen",
                    "dossiers": {"org-1": "100234"},
                    "groupIds": ["101"],
                }
            ]
        }
    }


async def test_account_name_can_differ_from_email(
    anva: AnvaSimulator, client: httpx.AsyncClient
) -> None:
    anva.add_account(
        account_id=8,
        first_name=None,
        middle_name=None,
        last_name=None,
        email=None,
        dossiers={},
        name="legacy-user",
    )

    (account,) = (await client.get("/account/mine")).json()["data"]["items"]

    assert account["name"] == "legacy-user"
    assert account["email"] is None


async def test_update_account_changes_what_is_served(
    anva: AnvaSimulator, client: httpx.AsyncClient
) -> None:
    add_jansen(anva)

    anva.update_account(7, lastName="de Vries", dossiers={"org-1": "100234", "org-2": "555"})

    (account,) = (await client.get("/account/mine")).json()["data"]["items"]
    assert account["lastName"] == "de Vries"
    assert account["dossiers"] == {"org-1": "100234", "org-2": "555"}


def test_update_account_refuses_a_field_the_api_does_not_have(anva: AnvaSimulator) -> None:
    add_jansen(anva)

    with pytest.raises(KeyError, match="last_name"):
        anva.update_account(7, last_name="de Vries")


def test_adding_an_existing_account_is_refused(anva: AnvaSimulator) -> None:
    add_jansen(anva)

    with pytest.raises(ValueError, match="already exists"):
        add_jansen(anva)


async def test_changing_the_returned_account_does_not_change_the_api(
    anva: AnvaSimulator, client: httpx.AsyncClient
) -> None:
    dossiers = {"org-1": "100234"}
    returned = anva.add_account(
        account_id=7,
        first_name="Piet",
        middle_name=None,
        last_name="Jansen",
        email="piet@example.nl",
        dossiers=dossiers,
    )

    returned["lastName"] = "changed"
    dossiers["org-2"] = "999"

    (account,) = (await client.get("/account/mine")).json()["data"]["items"]
    assert account["lastName"] == "Jansen"
    assert account["dossiers"] == {"org-1": "100234"}


async def test_organisations_mine_lists_organisations(
    anva: AnvaSimulator, client: httpx.AsyncClient
) -> None:
    anva.add_organisation(organisation_id="org-1", name="Basisvolmacht", code="BV")

    response = await client.get("/organization/organizations/mine")

    assert response.json() == {
        "data": {
            "items": [
                {
                    "id": "org-1",
                    "type": "insurer",
                    "code": "BV",
                    "name": "Basisvolmacht",
                    "icon": "",
                }
            ]
        }
    }


async def test_permissions_mine_lists_the_permissions_set_on_the_simulator(
    anva: AnvaSimulator, client: httpx.AsyncClient
) -> None:
    anva.permissions = ["contract.view", "account.view"]

    response = await client.get("/permission/permissions/mine")

    assert response.json() == {"data": {"items": ["contract.view", "account.view"]}}


async def test_mycontracts_lists_every_contract_in_the_spec_shape(
    anva: AnvaSimulator, client: httpx.AsyncClient
) -> None:
    anva.add_contract(
        contract_id="C-1",
        dossier_number="100234",
        format="AP",
        status="Lopend",
        metadata={"omschrijving": "Aansprakelijkheid particulier"},
    )
    anva.add_contract(
        contract_id="C-2", dossier_number="100555", format="ZPP", status="Lopend", metadata={}
    )

    response = await client.get("/contract/contracts/mycontracts")

    assert response.json() == {
        "data": {
            "items": [
                {
                    "id": "C-1",
                    "dossierNumber": "100234",
                    "format": "AP",
                    "metadata": {"omschrijving": "Aansprakelijkheid particulier"},
                    "status": "Lopend",
                },
                {
                    "id": "C-2",
                    "dossierNumber": "100555",
                    "format": "ZPP",
                    "metadata": {},
                    "status": "Lopend",
                },
            ]
        }
    }


async def test_contract_detail_serves_the_current_state_of_one_contract(
    anva: AnvaSimulator, client: httpx.AsyncClient
) -> None:
    anva.add_contract(
        contract_id="C-1", dossier_number="100234", format="AP", status="Lopend", metadata={}
    )
    anva.update_contract("C-1", status="Beëindigd")

    response = await client.get("/contract/contracts/C-1/mine")

    assert response.status_code == 200
    assert response.json()["data"]["items"] == [
        {
            "id": "C-1",
            "dossierNumber": "100234",
            "format": "AP",
            "metadata": {},
            "status": "Beëindigd",
        }
    ]


async def test_unknown_contract_is_404_with_message(client: httpx.AsyncClient) -> None:
    response = await client.get("/contract/contracts/nope/mine")

    assert response.status_code == 404
    assert response.json() == {"message": "Contract not found"}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", TOKEN])
async def test_requests_without_the_bearer_token_are_401(
    anva: AnvaSimulator, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=anva.app), base_url="http://anva.test/api"
    ) as client:
        response = await client.get("/account/mine", headers=headers)

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthenticated."}


async def test_requests_are_recorded_with_method_path_and_status(
    anva: AnvaSimulator, client: httpx.AsyncClient
) -> None:
    await client.get("/account/mine")
    await client.get("/contract/contracts/nope/mine")
    await client.get("/account/mine", headers={"Authorization": "Bearer wrong"})

    assert [(r.method, r.path, r.status) for r in anva.requests] == [
        ("GET", "/api/account/mine", 200),
        ("GET", "/api/contract/contracts/nope/mine", 404),
        ("GET", "/api/account/mine", 401),
    ]
    assert anva.requests[0].at <= anva.requests[1].at <= anva.requests[2].at


async def test_fail_next_answers_the_given_status_that_many_times(
    anva: AnvaSimulator, client: httpx.AsyncClient
) -> None:
    anva.faults.fail_next(2, status=502)

    statuses = [(await client.get("/account/mine")).status_code for _ in range(3)]

    assert statuses == [502, 502, 200]
    assert [r.status for r in anva.requests] == [502, 502, 200]


async def test_fail_next_defaults_to_503(anva: AnvaSimulator, client: httpx.AsyncClient) -> None:
    anva.faults.fail_next(1)

    assert (await client.get("/account/mine")).status_code == 503


async def test_down_answers_503_until_brought_back(
    anva: AnvaSimulator, client: httpx.AsyncClient
) -> None:
    anva.faults.down(True)
    while_down = [(await client.get(path)).status_code for path in ("/account/mine", "/nope")]
    anva.faults.down(False)

    assert while_down == [503, 503]
    assert (await client.get("/account/mine")).status_code == 200


@pytest.mark.looptime
async def test_delay_next_holds_only_the_next_requests(
    anva: AnvaSimulator, client: httpx.AsyncClient
) -> None:
    anva.faults.delay_next(2, 5.0)
    loop = asyncio.get_running_loop()

    durations_s = []
    for _ in range(3):
        started = loop.time()
        response = await client.get("/account/mine")
        durations_s.append(loop.time() - started)

    assert response.status_code == 200
    assert durations_s == pytest.approx([5.0, 5.0, 0.0], abs=0.01)
