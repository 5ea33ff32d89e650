"""PortalClient pagination and the PortalDirectory lookup policy, against the portal simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from app.clients.portal import PortalClient, PortalDirectory
from app.pipeline.mapping import desired_customer
from app.pipeline.plan import DossierDefaults, plan_customer
from app.pipeline.resolve import find_portal_customer
from app.sandbox.simulators.portal import PortalSimulator

TOKEN = "portal-token"


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    sim: PortalSimulator
    client: PortalClient
    directory: PortalDirectory
    clock: Clock

    def page_reads(self) -> int:
        return len(self.sim.requests)


def add(sim: PortalSimulator, index: int) -> None:
    sim.add_customer(
        customer_id=f"cst_{index}",
        company_name=f"Company {index}",
        address="Hoofdstraat 1",
        zip_code="1234AB",
        city="Utrecht",
        primary_email=f"c{index}@example.nl",
        phone=None,
        integration="anva",
        integration_id=str(100 + index),
    )


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    sim = PortalSimulator(token=TOKEN, per_page=2)
    for index in range(5):
        add(sim, index)
    clock = Clock()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app), base_url="http://portal/v1"
    ) as http:
        client = PortalClient(http, SecretStr(TOKEN))
        yield Setup(sim, client, PortalDirectory(client, ttl_s=300, clock=clock), clock)


async def test_listing_goes_by_page_number_until_next_page_url_is_null(setup: Setup) -> None:
    pages = await setup.client.all_pages()

    assert [p.number for p in pages] == [1, 2, 3]
    assert [c.id for p in pages for c in p.customers] == [f"cst_{i}" for i in range(5)]


async def test_first_lookup_builds_the_locators_then_each_lookup_reads_one_page(
    setup: Setup,
) -> None:
    first = await setup.directory.by_dossier_number("104")
    reads_after_first = setup.page_reads()
    second = await setup.directory.by_id("cst_1")

    assert first is not None and first.id == "cst_4"
    assert second is not None and second.companyName == "Company 1"
    assert reads_after_first == 3 + 1
    assert setup.page_reads() - reads_after_first == 1


async def test_lookup_returns_the_current_state_not_a_cached_copy(setup: Setup) -> None:
    await setup.directory.by_dossier_number("101")
    setup.sim.update_customer("cst_1", primaryEmail="new@example.nl")

    found = await setup.directory.by_dossier_number("101")

    assert found is not None and found.primaryEmail == "new@example.nl"


async def test_a_customer_added_after_the_build_is_found_by_one_rebuild(setup: Setup) -> None:
    await setup.directory.by_dossier_number("100")
    add(setup.sim, 5)

    found = await setup.directory.by_dossier_number("105")

    assert found is not None and found.id == "cst_5"
    assert setup.directory.rebuilds == 2


async def test_an_unknown_customer_costs_one_rebuild_and_gives_none(setup: Setup) -> None:
    await setup.directory.by_dossier_number("100")

    assert await setup.directory.by_dossier_number("999") is None
    assert setup.directory.rebuilds == 2


async def test_locators_older_than_the_ttl_are_rebuilt(setup: Setup) -> None:
    await setup.directory.by_dossier_number("100")
    setup.clock.now += 301

    await setup.directory.by_dossier_number("100")

    assert setup.directory.rebuilds == 2


@pytest.mark.parametrize(
    ("hint", "why"),
    [
        ("cst_4", "linked to dossier 104"),
        ("cst_other", "another integration"),
        ("cst_x", "unknown"),
    ],
)
async def test_a_portal_customer_id_hint_is_used_only_when_it_is_linked_to_the_dossier(
    setup: Setup, hint: str, why: str
) -> None:
    setup.sim.add_customer(
        customer_id="cst_other",
        company_name="Someone Else B.V.",
        address="Elders 9",
        zip_code="9999ZZ",
        city="Groningen",
        primary_email="other@example.nl",
        phone=None,
        integration="acumulus",
        integration_id="101",
    )

    found = await find_portal_customer(setup.directory, "101", hint)

    assert found is not None and found.id == "cst_1", why


async def test_a_hint_that_is_the_dossiers_own_customer_is_used(setup: Setup) -> None:
    found = await find_portal_customer(setup.directory, "104", "cst_4")

    assert found is not None and found.id == "cst_4"


def spec_customer(customer_id: str, **fields: Any) -> dict[str, Any]:
    """A customer in the spec's shape."""
    return {
        "id": customer_id,
        "companyName": "Test Company BV",
        "address": "Teststreet 123",
        "zipCode": "1234AB",
        "city": "Amsterdam",
        "primaryEmail": "info@example.nl",
        "phone": "+312012345678",
        "integration": "anva",
        "integrationId": "123456789",
        "customerGroups": ["cug_123abc567"],
        "createdAt": "2024-04-28T21:00:00+02:00",
        **fields,
    }


@asynccontextmanager
async def portal_answering(pages: list[list[Any]]) -> AsyncIterator[PortalClient]:
    """A portal serving `pages` (each a list of customer records) in the paginated shape."""

    def answer(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        has_next = number < len(pages)
        return httpx.Response(
            200,
            json={
                "current_page": number,
                "data": pages[number - 1],
                "next_page_url": f"https://portal/v1/customers?page={number + 1},"
                if has_next
                else None,
                "per_page": 15,
            },
        )

    transport = httpx.MockTransport(answer)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal/v1") as http:
        yield PortalClient(http, SecretStr(TOKEN))


async def test_an_unreadable_customer_is_skipped_and_the_rest_of_the_page_is_read() -> None:
    page = [
        spec_customer("cst_1"),
        {"companyName": "Without an id"},
        spec_customer("cst_3", address={"street": "Teststreet", "number": 123}),
        spec_customer("cst_4", customerGroups=None, integrationId=100234, extra={"a": [1]}),
    ]

    with capture_logs() as logs:
        async with portal_answering([page]) as client:
            (read,) = await client.all_pages()

    assert [c.id for c in read.customers] == ["cst_1", "cst_4"]
    assert read.customers[1].dossier_number == "100234"
    assert read.customers[1].customerGroups == []
    assert [(log["api"], log["item_id"], log["problems"]) for log in logs] == [
        ("portal", None, ["id: missing"]),
        ("portal", "cst_3", ["address: string_type"]),
    ]


async def test_a_page_of_only_unreadable_customers_does_not_end_the_listing() -> None:
    pages = [[{"companyName": "Without an id"}], [spec_customer("cst_2")]]

    async with portal_answering(pages) as client:
        read = await client.all_pages()

    assert [[c.id for c in page.customers] for page in read] == [[], ["cst_2"]]


async def test_a_customer_without_phone_or_email_is_synced_without_them() -> None:
    page = [spec_customer("cst_1", phone=None, primaryEmail="", integrationId="100234")]

    async with portal_answering([page]) as client:
        directory = PortalDirectory(client, ttl_s=300)
        customer = await directory.by_dossier_number("100234")
    desired = desired_customer("100234", None, customer)
    steps = plan_customer(desired, None, DossierDefaults(kantoor_id=1, dossierstatus_id=1))

    assert (desired.email, desired.phone) == (None, None)
    assert [type(step).__name__ for step in steps] == [
        "CreateDossier",
        "CreateKlant",
        "AddAdres",
        "SetCorrespondentieadres",
    ]
    payloads = [getattr(step, "payload", {}) for step in steps]
    assert all(value not in (None, "") for payload in payloads for value in payload.values())


async def test_the_probe_reads_page_one(setup: Setup) -> None:
    await setup.client.probe()

    assert [(r.path, r.query, r.status) for r in setup.sim.requests] == [
        ("/v1/customers", "page=1", 200)
    ]
