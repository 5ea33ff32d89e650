"""PortalClient pagination and the PortalDirectory lookup policy, against the portal simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from app.clients.portal import PortalClient, PortalCustomer, PortalDirectory
from app.clients.shared_read import loop_time
from app.pipeline.customer_plan import DossierDefaults, desired_customer, plan_customer
from app.pipeline.upstream import find_portal_customer
from app.sandbox.simulators.portal import PortalSimulator

TOKEN = "portal-token"
FIRST_BUILD = ["page=1", "page=2", "page=4", "page=3", "page=2", "page=1"]
"""The first index of the 3-page listing: its end found in doubling steps (page 4 is past
it, so halving back to 3), then read from the end back to page 1."""


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
        yield Setup(sim, client, PortalDirectory.from_client(client, ttl_s=300, clock=clock), clock)


async def test_listing_goes_by_page_number_until_next_page_url_is_null(setup: Setup) -> None:
    pages = await setup.client.all_pages()

    assert [p.number for p in pages] == [1, 2, 3]
    assert [c.id for p in pages for c in p.customers] == [f"cst_{i}" for i in range(5)]


async def test_first_lookup_builds_the_locators_then_each_lookup_reads_one_page(
    setup: Setup,
) -> None:
    first = await setup.directory.by_dossier_number("104", fresh_after=loop_time())
    reads_after_first = setup.page_reads()
    second = await setup.directory.by_id("cst_1", fresh_after=loop_time())

    assert first is not None and first.id == "cst_4"
    assert second is not None and second.companyName == "Company 1"
    assert [r.query for r in setup.sim.requests[:reads_after_first]] == [*FIRST_BUILD, "page=3"]
    assert setup.page_reads() - reads_after_first == 1
    assert (setup.directory.page_of("cst_4"), setup.directory.page_of("cst_1")) == (3, 1)


async def test_lookup_returns_the_current_state_not_a_cached_copy(setup: Setup) -> None:
    await setup.directory.by_dossier_number("101", fresh_after=loop_time())
    setup.sim.update_customer("cst_1", primaryEmail="new@example.nl")

    found = await setup.directory.by_dossier_number("101", fresh_after=loop_time())

    assert found is not None and found.primaryEmail == "new@example.nl"


async def test_a_learned_locator_costs_one_page_read_without_any_index(setup: Setup) -> None:
    setup.directory.learn("cst_4", "104", 3)

    found = await setup.directory.by_dossier_number("104", fresh_after=loop_time())

    assert found is not None and found.id == "cst_4"
    assert [r.query for r in setup.sim.requests] == ["page=3"]
    assert setup.directory.builds == 0


async def test_a_customer_shifted_by_a_deletion_is_found_on_the_page_before(setup: Setup) -> None:
    await setup.directory.by_id("cst_2", fresh_after=loop_time())
    setup.sim.remove_customer("cst_0")
    before = setup.page_reads()

    found = await setup.directory.by_id("cst_2", fresh_after=loop_time())

    assert found is not None and found.id == "cst_2"
    assert [r.query for r in setup.sim.requests[before:]] == ["page=2", "page=1"]
    assert setup.directory.page_of("cst_2") == 1


async def test_a_new_customer_is_found_in_the_append_region_without_a_rebuild(
    setup: Setup,
) -> None:
    await setup.directory.by_dossier_number("100", fresh_after=loop_time())
    for index in range(5, 10):
        add(setup.sim, index)
    before = setup.page_reads()

    found = await setup.directory.by_dossier_number("109", fresh_after=loop_time())
    then = await setup.directory.by_dossier_number("108", fresh_after=loop_time())

    assert found is not None and found.id == "cst_9"
    assert then is not None and then.id == "cst_8"
    assert [r.query for r in setup.sim.requests[before:]] == [
        "page=3",
        "page=4",
        "page=5",
        "page=5",
    ]
    assert setup.directory.builds == 1


async def test_an_unknown_customer_costs_at_most_the_append_bound_then_the_last_page(
    setup: Setup,
) -> None:
    await setup.directory.by_dossier_number("100", fresh_after=loop_time())
    for index in range(5, 9):
        add(setup.sim, index)
    before = setup.page_reads()

    first = await setup.directory.by_dossier_number("999", fresh_after=loop_time())
    cost = setup.page_reads() - before
    repeated = await setup.directory.by_dossier_number("999", fresh_after=loop_time())

    assert (first, repeated) == (None, None)
    assert cost == 3, "from the highest page seen (3) to the listing's end (5)"
    assert [r.query for r in setup.sim.requests[before + cost :]] == ["page=5"]
    assert setup.directory.builds == 1


async def test_a_customer_added_after_its_miss_is_found_by_the_next_lookup_within_the_miss_ttl(
    setup: Setup,
) -> None:
    await setup.directory.by_dossier_number("100", fresh_after=loop_time())
    missed = await setup.directory.by_dossier_number("999", fresh_after=loop_time())
    add(setup.sim, 899)  # dossier 999, appended to the last page
    before = setup.page_reads()

    found = await setup.directory.by_dossier_number("999", fresh_after=loop_time())

    assert missed is None
    assert found is not None and found.id == "cst_899"
    assert [r.query for r in setup.sim.requests[before:]] == ["page=3"], (
        "the page where a new customer can appear now, not the whole listing"
    )
    assert setup.clock.now < 300, "well within PORTAL_MISS_TTL_S"


async def test_a_customer_the_portal_does_not_know_never_costs_the_whole_listing() -> None:
    """Per lookup of an unknown customer (a backfill of ANVA-only dossiers), first or
    repeated, before or after PORTAL_MISS_TTL_S: the last page, one read."""
    sim = PortalSimulator(token=TOKEN, per_page=15)
    for index in range(1_500):
        add(sim, index)
    clock = Clock()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app), base_url="http://portal/v1"
    ) as http:
        directory = PortalDirectory.from_client(
            PortalClient(http, SecretStr(TOKEN)), ttl_s=3600, clock=clock
        )
        await directory.by_dossier_number("100", fresh_after=loop_time())
        before = len(sim.requests)
        unknown = [str(900_000 + n) for n in range(50)]

        for number in [*unknown, *unknown]:
            assert await directory.by_dossier_number(number, fresh_after=loop_time()) is None
        clock.now += 301
        for number in unknown:
            assert await directory.by_dossier_number(number, fresh_after=loop_time()) is None

    reads = [r.query for r in sim.requests[before:]]
    assert len(reads) / 150 == 1.0, "one page read per lookup"
    assert set(reads) == {"page=100"}, "the listing's last page, nothing before it"
    assert directory.builds == 1


async def test_a_customer_moved_further_than_its_window_is_found_by_one_full_read(
    setup: Setup,
) -> None:
    for index in range(5, 10):
        add(setup.sim, index)
    await setup.directory.by_id("cst_7", fresh_after=loop_time())
    for index in range(4):
        setup.sim.remove_customer(f"cst_{index}")  # cst_7 moves from page 4 to page 2
    builds = setup.directory.builds

    found = await setup.directory.by_id("cst_7", fresh_after=loop_time())

    assert found is not None and found.id == "cst_7", "not called unknown"
    assert setup.directory.builds == builds + 1
    assert setup.directory.page_of("cst_7") == 2


async def test_a_customer_gone_from_the_portal_costs_one_full_read_and_the_miss_spares_more(
    setup: Setup,
) -> None:
    await setup.directory.by_id("cst_2", fresh_after=loop_time())
    setup.sim.remove_customer("cst_2")

    gone = await setup.directory.by_id("cst_2", fresh_after=loop_time())
    builds_after_miss = setup.directory.builds
    located_after_miss = setup.directory.page_of("cst_2")
    setup.directory.learn("cst_2", "102", 2)  # a stale locator, e.g. from durable memory
    before = setup.page_reads()
    again = await setup.directory.by_id("cst_2", fresh_after=loop_time())
    reads_within_ttl = [r.query for r in setup.sim.requests[before:]]
    setup.clock.now += 301
    after_ttl = await setup.directory.by_id("cst_2", fresh_after=loop_time())

    assert (gone, again, after_ttl) == (None, None, None)
    assert builds_after_miss == 2, "the first index, then one full read"
    assert located_after_miss is None, "the full read dropped its locator"
    assert reads_within_ttl == ["page=2", "page=1", "page=3", "page=2"], (
        "its window and the append region, not the whole listing"
    )
    assert setup.directory.builds == 3, "past PORTAL_MISS_TTL_S it is searched in full again"


async def test_a_burst_of_new_customers_past_the_bound_is_caught_up_once_for_all_events(
    setup: Setup,
) -> None:
    await setup.directory.by_dossier_number("100", fresh_after=loop_time())
    for index in range(5, 21):
        add(setup.sim, index)
    before = setup.page_reads()

    async def event(dossier_number: str) -> PortalCustomer | None:
        return await setup.directory.by_dossier_number(dossier_number, fresh_after=0.0)

    found = await asyncio.gather(*(event(str(100 + i)) for i in range(5, 21)))

    assert [c.id for c in found if c is not None] == [f"cst_{i}" for i in range(5, 21)]
    pages = [r.query for r in setup.sim.requests[before:]]
    assert max(pages.count(page) for page in pages) <= 2, "no page read per event"


async def test_after_deletions_the_append_region_steps_back_to_the_listings_end(
    setup: Setup,
) -> None:
    setup.directory.learn("cst_gone", None, 9)

    assert await setup.directory.by_id("cst_gone", fresh_after=loop_time()) is None
    add(setup.sim, 5)
    setup.clock.now += 301
    found = await setup.directory.by_dossier_number("105", fresh_after=loop_time())

    assert found is not None and found.id == "cst_5"


async def test_a_miss_before_the_first_index_waits_for_the_build_started_at_start(
    setup: Setup,
) -> None:
    setup.directory.start()
    try:
        found = await setup.directory.by_dossier_number("102", fresh_after=loop_time())
    finally:
        await setup.directory.stop()

    assert found is not None and found.id == "cst_2"
    assert setup.directory.builds == 1
    assert [r.query for r in setup.sim.requests] == [*FIRST_BUILD, "page=2"]


async def test_concurrent_lookups_of_one_page_in_an_event_share_its_read(setup: Setup) -> None:
    setup.directory.learn("cst_0", "100", 1)
    setup.directory.learn("cst_1", "101", 1)

    async def event(customer_id: str) -> PortalCustomer | None:
        return await setup.directory.by_id(customer_id, fresh_after=0.0)

    found = await asyncio.gather(event("cst_0"), event("cst_1"))

    assert [c.id for c in found if c is not None] == ["cst_0", "cst_1"]
    assert setup.page_reads() == 1


@pytest.mark.timeout(10)
@pytest.mark.looptime
async def test_the_index_is_rebuilt_in_the_background_paced_not_on_a_lookups_path(
    setup: Setup,
) -> None:
    reads: list[str] = []
    directory = PortalDirectory.from_client(
        setup.client, ttl_s=100, refresh_pages_per_s=2, on_page_read=reads.append
    )
    directory.start()
    await asyncio.sleep(1)
    first_build = [r.at for r in setup.sim.requests]
    await asyncio.sleep(99.2)
    found = await directory.by_id("cst_0", fresh_after=loop_time())
    await asyncio.sleep(5)
    await directory.stop()

    refreshes = [r for r, why in zip(setup.sim.requests, reads, strict=True) if why == "refresh"]
    rebuild = refreshes[6:]
    assert found is not None
    assert len(first_build) == 6 and max(first_build) - min(first_build) < 0.1
    assert directory.builds == 2
    assert [r.query for r in rebuild] == ["page=3", "page=2", "page=1"], "end first, then back"
    assert [b.at - a.at for a, b in pairwise(rebuild)] == [0.5, 0.5]
    assert reads == ["refresh"] * 7 + ["lookup"] + ["refresh"] * 2
    assert setup.sim.requests[7].at == pytest.approx(100.2)


async def rebuild_with_a_change_midway(
    client: PortalClient, change: Callable[[], None], *, change_at_s: float
) -> PortalDirectory:
    """A started directory (first index at 0 s) whose paced rebuild at 100 s (2 pages a
    second, from the end back) sees `change` happen at `change_at_s`; stopped after it."""
    directory = PortalDirectory.from_client(client, ttl_s=100, refresh_pages_per_s=2)
    directory.start()
    await asyncio.sleep(change_at_s)
    change()
    await asyncio.sleep(110 - change_at_s)
    await directory.stop()
    assert directory.builds == 2
    return directory


@pytest.mark.timeout(10)
@pytest.mark.looptime
async def test_a_customer_moved_forward_by_a_deletion_during_a_rebuild_is_located_where_it_is(
    setup: Setup,
) -> None:
    for index in range(5, 10):
        add(setup.sim, index)  # pages [0 1] [2 3] [4 5] [6 7] [8 9]

    # The rebuild reads page 5 at 100.0 s and 4 at 100.5 s; then cst_0 goes, so cst_4 moves
    # from page 3 to page 2 (a forward read, past page 2 by then, would never see it).
    directory = await rebuild_with_a_change_midway(
        setup.client, lambda: setup.sim.remove_customer("cst_0"), change_at_s=100.7
    )
    before = setup.page_reads()
    found = await directory.by_dossier_number("104", fresh_after=loop_time())

    assert found is not None and found.id == "cst_4"
    assert [r.query for r in setup.sim.requests[before:]] == ["page=2"]


class Listing:
    """A portal listing whose order a test controls, served in the spec's paginated shape:
    for changes the simulator does not make (a customer inserted before others)."""

    def __init__(self, customer_ids: list[str], *, per_page: int) -> None:
        self.customers = [
            spec_customer(c, integrationId=c.removeprefix("cst_")) for c in customer_ids
        ]
        self.per_page = per_page
        self.queries: list[str] = []

    def insert(self, position: int, customer_id: str) -> None:
        self.customers.insert(position, spec_customer(customer_id, integrationId=None))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.queries.append(request.url.query.decode())
        number = int(request.url.params["page"])
        offset = (number - 1) * self.per_page
        data = self.customers[offset : offset + self.per_page]
        more = offset + self.per_page < len(self.customers)
        return httpx.Response(
            200,
            json={
                "current_page": number,
                "data": data,
                "next_page_url": f"https://portal/v1/customers?page={number + 1},"
                if more
                else None,
                "per_page": self.per_page,
            },
        )


@pytest.mark.timeout(10)
@pytest.mark.looptime
async def test_a_customer_moved_back_by_an_insertion_during_a_rebuild_is_still_found() -> None:
    listing = Listing([f"cst_{n}" for n in range(10)], per_page=2)
    transport = httpx.MockTransport(listing)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal/v1") as http:
        client = PortalClient(http, SecretStr(TOKEN))

        # Read back from the end, the rebuild has read pages 5 and 4 when a customer is
        # inserted first: cst_5 moves from page 3 to page 4, behind the read, unseen by it.
        directory = await rebuild_with_a_change_midway(
            client, lambda: listing.insert(0, "cst_new"), change_at_s=100.7
        )
        before = len(listing.queries)
        found = await directory.by_id("cst_5", fresh_after=loop_time())

    assert found is not None and found.id == "cst_5"
    assert listing.queries[before:] == ["page=3", "page=2", "page=4"], (
        "its page as the previous index knew it, the page before, the page after"
    )


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

    found = await find_portal_customer(setup.directory, "101", hint, fresh_after=loop_time())

    assert found is not None and found.id == "cst_1", why


async def test_a_hint_that_is_the_dossiers_own_customer_is_used(setup: Setup) -> None:
    found = await find_portal_customer(setup.directory, "104", "cst_4", fresh_after=loop_time())

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
        directory = PortalDirectory.from_client(client, ttl_s=300)
        customer = await directory.by_dossier_number("100234", fresh_after=loop_time())
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
