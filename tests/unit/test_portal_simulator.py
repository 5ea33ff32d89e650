"""The MijnKlantportaal simulator lists customers as `specs/mijnklantportaal-customers-api.txt` does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from app.sandbox.simulators.portal import PortalSimulator

TOKEN = "portal-token"
BASE_URL = "http://portal.test/v1"


@pytest.fixture
def portal() -> PortalSimulator:
    return PortalSimulator(token=TOKEN, per_page=2)


@pytest.fixture
async def client(portal: PortalSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=portal.app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client


def add_customers(portal: PortalSimulator, count: int) -> None:
    for n in range(1, count + 1):
        portal.add_customer(
            customer_id=f"cst_{n}",
            company_name=f"Company {n} BV",
            address=f"Teststraat {n}",
            zip_code="1234AB",
            city="Amsterdam",
            primary_email=f"info{n}@example.nl",
            phone="+312012345678",
            integration_id=f"10023{n}",
        )


async def test_customer_objects_have_the_spec_fields(
    portal: PortalSimulator, client: httpx.AsyncClient
) -> None:
    portal.add_customer(
        customer_id="cst_abc",
        company_name="Test Company BV",
        address="Teststreet 123",
        zip_code="1234AB",
        city="Amsterdam",
        primary_email="info@example.nl",
        phone="+312012345678",
        integration_id="100234",
        customer_groups=["cug_1"],
    )

    (customer,) = (await client.get("/customers")).json()["data"]

    created_at = customer.pop("createdAt")
    assert customer == {
        "id": "cst_abc",
        "companyName": "Test Company BV",
        "address": "Teststreet 123",
        "zipCode": "1234AB",
        "city": "Amsterdam",
        "primaryEmail": "info@example.nl",
        "phone": "+312012345678",
        "integration": "anva",
        "integrationId": "100234",
        "customerGroups": ["cug_1"],
    }
    assert datetime.fromisoformat(created_at).utcoffset() is not None


async def test_first_page_has_spec_metadata_and_a_next_url_with_trailing_comma(
    portal: PortalSimulator, client: httpx.AsyncClient
) -> None:
    add_customers(portal, 3)

    body = (await client.get("/customers")).json()

    assert [c["id"] for c in body.pop("data")] == ["cst_1", "cst_2"]
    assert body == {
        "current_page": 1,
        "first_page_url": f"{BASE_URL}/customers?page=1",
        "from": 1,
        "next_page_url": f"{BASE_URL}/customers?page=2,",
        "path": f"{BASE_URL}/customers",
        "per_page": 2,
        "prev_page_url": None,
        "to": 2,
    }


async def test_last_page_has_no_next_url_and_links_back(
    portal: PortalSimulator, client: httpx.AsyncClient
) -> None:
    add_customers(portal, 3)

    body = (await client.get("/customers", params={"page": 2})).json()

    assert [c["id"] for c in body["data"]] == ["cst_3"]
    assert body["current_page"] == 2
    assert (body["from"], body["to"]) == (3, 3)
    assert body["next_page_url"] is None
    assert body["prev_page_url"] == f"{BASE_URL}/customers?page=1"


async def test_a_full_last_page_has_no_next_url(
    portal: PortalSimulator, client: httpx.AsyncClient
) -> None:
    add_customers(portal, 4)

    body = (await client.get("/customers", params={"page": 2})).json()

    assert [c["id"] for c in body["data"]] == ["cst_3", "cst_4"]
    assert body["next_page_url"] is None


async def test_page_beyond_the_end_is_empty(
    portal: PortalSimulator, client: httpx.AsyncClient
) -> None:
    add_customers(portal, 1)

    body = (await client.get("/customers", params={"page": 5})).json()

    assert body["data"] == []
    assert (body["from"], body["to"], body["next_page_url"]) == (None, None, None)
    assert body["current_page"] == 5


async def test_an_empty_portal_lists_an_empty_first_page(client: httpx.AsyncClient) -> None:
    body = (await client.get("/customers")).json()

    assert body["data"] == []
    assert body["from"] is None
    assert body["next_page_url"] is None


@pytest.mark.parametrize("page", ["abc", "0", "-3"])
async def test_unusable_page_numbers_mean_page_one(
    portal: PortalSimulator, client: httpx.AsyncClient, page: str
) -> None:
    add_customers(portal, 3)

    body = (await client.get("/customers", params={"page": page})).json()

    assert body["current_page"] == 1
    assert [c["id"] for c in body["data"]] == ["cst_1", "cst_2"]


async def test_paginating_by_page_number_yields_every_customer_once_in_insertion_order(
    portal: PortalSimulator, client: httpx.AsyncClient
) -> None:
    add_customers(portal, 5)
    seen: list[str] = []

    page = 1
    while True:
        body = (await client.get("/customers", params={"page": page})).json()
        seen += [c["id"] for c in body["data"]]
        if body["next_page_url"] is None:
            break
        page += 1

    assert seen == ["cst_1", "cst_2", "cst_3", "cst_4", "cst_5"]
    assert [r.query for r in portal.requests] == ["page=1", "page=2", "page=3"]


async def test_update_customer_changes_what_is_listed(
    portal: PortalSimulator, client: httpx.AsyncClient
) -> None:
    add_customers(portal, 1)

    portal.update_customer("cst_1", primaryEmail="new@example.nl", zipCode="9999ZZ")

    (customer,) = (await client.get("/customers")).json()["data"]
    assert (customer["primaryEmail"], customer["zipCode"]) == ("new@example.nl", "9999ZZ")


def test_update_customer_refuses_a_field_the_api_does_not_have(portal: PortalSimulator) -> None:
    add_customers(portal, 1)

    with pytest.raises(KeyError, match="primary_email"):
        portal.update_customer("cst_1", primary_email="new@example.nl")


async def test_removed_customer_is_no_longer_listed_and_later_ones_move_up(
    portal: PortalSimulator, client: httpx.AsyncClient
) -> None:
    add_customers(portal, 3)

    portal.remove_customer("cst_1")

    body = (await client.get("/customers")).json()
    assert [c["id"] for c in body["data"]] == ["cst_2", "cst_3"]
    assert body["next_page_url"] is None


async def test_default_page_size_is_15() -> None:
    portal = PortalSimulator(token=TOKEN)
    add_customers(portal, 16)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=portal.app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        body = (await client.get("/customers")).json()

    assert (body["per_page"], len(body["data"]), body["to"]) == (15, 15, 15)


async def test_requests_without_the_bearer_token_are_401(portal: PortalSimulator) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=portal.app), base_url=BASE_URL
    ) as client:
        response = await client.get("/customers")

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthenticated."}
    assert [(r.path, r.status) for r in portal.requests] == [("/v1/customers", 401)]


async def test_faults_apply_to_the_portal_too(
    portal: PortalSimulator, client: httpx.AsyncClient
) -> None:
    portal.faults.fail_next(1, status=429)
    portal.faults.down(True)

    down = await client.get("/customers")
    portal.faults.down(False)
    failed = await client.get("/customers")
    served = await client.get("/customers")

    assert [down.status_code, failed.status_code, served.status_code] == [503, 429, 200]
