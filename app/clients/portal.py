"""MijnKlantportaal customers API client, and the directory that finds a customer in it.

The portal documents no single-customer endpoint, only the paginated listing (about 700
pages at 10,500 customers), so a lookup is a page read. `PortalDirectory` remembers on
which page each customer was seen (a locator, never the customer's state): a lookup
re-reads that page, so the state it returns is always current, and costs one request
in steady state. Locators come from a full index that a background task builds at
start and rebuilds every `PORTAL_INDEX_TTL_S`, paced, never on an event's path; from
the pages events read; and from durable memory (`learn`).

What an event costs when the locator is wrong or missing stays bounded:
- deletions shift customers to earlier pages: a customer not on its page is looked for
  on the page before it;
- new customers are appended at the end of the listing: a customer the index does not
  know is looked for in the append region, from the highest page seen forward, at most
  `PORTAL_APPEND_PAGES` pages; not found there, the miss is remembered for
  `PORTAL_MISS_TTL_S` (a repeat costs no request) and the answer is None. Only when the
  listing goes on past that bound (a burst of new customers) do the events behind it
  share one catch-up read to its end, so an existing customer is never called unknown;
- the one wait: before this process's first complete index, a miss waits for that
  build, as a customer in the middle of the listing would otherwise look unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from app.clients._http import json_object, raise_for_status, send
from app.clients._tolerant import StrList, parse_items, php_list
from app.clients.freshness import arrived_at
from app.clients.shared_read import SharedRead, loop_time

log = structlog.get_logger(__name__)

API = "portal"
ANVA_INTEGRATION = "anva"


class PortalCustomer(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    id: str
    companyName: str | None = None
    address: str | None = None
    zipCode: str | None = None
    city: str | None = None
    primaryEmail: str | None = None
    phone: str | None = None
    integration: str | None = None
    integrationId: str | None = None
    customerGroups: StrList = Field(default_factory=list)
    createdAt: str | None = None

    @property
    def dossier_number(self) -> str | None:
        """The ANVA dossier number this customer is linked to, if any."""
        return self.integrationId if self.integration == ANVA_INTEGRATION else None


@dataclass(frozen=True)
class PortalPage:
    number: int
    customers: list[PortalCustomer]
    has_next: bool


class PortalClient:
    """Takes a long-lived `httpx.AsyncClient` whose base URL is `PORTAL_BASE_URL`."""

    def __init__(self, http: httpx.AsyncClient, token: SecretStr) -> None:
        self._http = http
        self._token = token

    async def page(self, number: int) -> PortalPage:
        """One page; `next_page_url` only says whether there is more (the spec's has a comma)."""
        request = self._http.build_request(
            "GET",
            "customers",
            params={"page": number},
            headers={"Authorization": f"Bearer {self._token.get_secret_value()}"},
        )
        response = await send(self._http, request, api=API)
        raise_for_status(response, api=API)
        document = json_object(response, api=API)
        data = php_list(document.get("data")) or []
        customers = parse_items(PortalCustomer, data, api=API)
        # An empty page ends the listing whatever it says, so a wrong next_page_url cannot
        # loop; a page whose customers were all unreadable is not empty.
        return PortalPage(number, customers, bool(document.get("next_page_url")) and bool(data))

    async def probe(self) -> None:
        """Page 1: the cheapest request that shows whether the portal answers."""
        await self.page(1)

    async def all_pages(self) -> list[PortalPage]:
        pages = [await self.page(1)]
        while pages[-1].has_next:
            pages.append(await self.page(pages[-1].number + 1))
        return pages


PageReadPurpose = Literal["lookup", "refresh"]
"""Whether a page read served an event (or the prefill) or the background index build."""


@dataclass(frozen=True)
class _Index:
    """Where customers were seen: customer id → page, dossier number → customer id."""

    page_of_customer: dict[str, int] = field(default_factory=dict)
    customer_of_dossier: dict[str, str] = field(default_factory=dict)

    def learn(self, customer_id: str, dossier_number: str | None, page: int) -> None:
        self.page_of_customer[customer_id] = page
        if dossier_number:
            self.customer_of_dossier[dossier_number] = customer_id


@dataclass(frozen=True)
class _PageRead:
    started_at: float
    task: asyncio.Task[PortalPage]


class PortalDirectory:
    """Finds portal customers by id or by dossier number; see the module docstring.

    `start()` begins the background index (first build at once, then a paced rebuild
    every `ttl_s`); `stop()` ends it. Without `start()` (one-shot commands, tests) the
    first miss builds the index itself and no refresh follows.
    """

    def __init__(
        self,
        client: PortalClient,
        *,
        ttl_s: float,
        refresh_pages_per_s: float = 20.0,
        append_pages: int = 3,
        miss_ttl_s: float = 300.0,
        retry_s: float = 30.0,
        clock: Callable[[], float] = loop_time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._refresh_interval_s = 1 / refresh_pages_per_s
        self._append_pages = append_pages
        self._miss_ttl_s = miss_ttl_s
        self._retry_s = retry_s
        self._clock = clock
        self._sleep = sleep
        self._index = _Index()
        self._last_page = 0
        self._misses: dict[tuple[str, str], float] = {}
        self._in_flight: dict[int, _PageRead] = {}
        self._first_build: asyncio.Task[None] | None = None
        self._indexed = False
        self._refresher: asyncio.Task[None] | None = None
        self._tail = SharedRead(self._read_tail)
        self.builds = 0
        self.on_page_read: Callable[[PageReadPurpose], None] = lambda purpose: None

    # -- what callers tell and ask besides lookups --------------------------------------

    def learn(self, customer_id: str, dossier_number: str | None, page: int) -> None:
        """Seed a locator, e.g. from durable memory: where the customer was last found."""
        self._index.learn(customer_id, dossier_number, page)
        self._last_page = max(self._last_page, page)
        self._misses.pop(("id", customer_id), None)
        if dossier_number:
            self._misses.pop(("dossier", dossier_number), None)

    def page_of(self, customer_id: str) -> int | None:
        """The page the customer was last seen on (after a lookup: where it was found)."""
        return self._index.page_of_customer.get(customer_id)

    # -- lookups -------------------------------------------------------------------------

    async def by_id(self, portal_customer_id: str) -> PortalCustomer | None:
        return await self._find(
            ("id", portal_customer_id),
            lambda c: c.id == portal_customer_id,
            lambda: portal_customer_id,
        )

    async def by_dossier_number(self, dossier_number: str) -> PortalCustomer | None:
        return await self._find(
            ("dossier", dossier_number),
            lambda c: c.dossier_number == dossier_number,
            lambda: self._index.customer_of_dossier.get(dossier_number),
        )

    async def _find(
        self,
        miss_key: tuple[str, str],
        matches: Callable[[PortalCustomer], bool],
        locate: Callable[[], str | None],
    ) -> PortalCustomer | None:
        """Located: its page, then the page before it. Else (before the first index: once it
        is built, located again) the append region; not there: a remembered miss."""
        found = await self._where_located(matches, locate)
        if found is not None:
            return found
        if self._misses.get(miss_key, float("-inf")) > self._clock():
            return None
        if not self._indexed:
            await self._first_index()
            found = await self._where_located(matches, locate)
            if found is not None:
                return found
        found = await self._in_append_region(matches, locate)
        if found is None:
            self._misses[miss_key] = self._clock() + self._miss_ttl_s
        return found

    async def _where_located(
        self, matches: Callable[[PortalCustomer], bool], locate: Callable[[], str | None]
    ) -> PortalCustomer | None:
        customer_id = locate()
        page = None if customer_id is None else self._index.page_of_customer.get(customer_id)
        if page is None:
            return None
        for number in (page, page - 1) if page > 1 else (page,):
            found = _first(matches, await self._lookup_page(number))
            if found is not None:
                return found
        return None

    async def _in_append_region(
        self, matches: Callable[[PortalCustomer], bool], locate: Callable[[], str | None]
    ) -> PortalCustomer | None:
        """From the highest page seen forward; an empty page there means the listing shrank
        (deletions), so the end is looked for one page back instead.

        When the bound is reached before the listing's end, the locators are behind the
        listing (a burst of new customers): answering None would call an existing customer
        unknown, so the event waits for a catch-up to the end, which every event behind
        the same burst shares (`_tail`), and then looks where that located the customer.
        """
        number = max(self._last_page, 1)
        for _ in range(self._append_pages):
            page = await self._lookup_page(number)
            found = _first(matches, page)
            if found is not None:
                return found
            if not page.customers and number > 1:
                number -= 1
                self._last_page = min(self._last_page, number)
            elif page.has_next:
                number += 1
            else:
                return None
        await self._tail.get()
        return await self._where_located(matches, locate)

    async def _read_tail(self) -> None:
        """Every page from the highest page seen to the listing's end, into the locators."""
        number = max(self._last_page, 1)
        while True:
            page = await self._read(number, "lookup")
            self._learn_page(page)
            if not page.has_next:
                return
            number += 1

    async def _lookup_page(self, number: int) -> PortalPage:
        """A page read for a lookup: joins a read of the same page that started after the
        caller's event arrived, else reads; what it shows becomes the page's locators."""
        read = self._in_flight.get(number)
        if read is None or read.started_at < arrived_at():
            read = _PageRead(loop_time(), asyncio.create_task(self._read(number, "lookup")))
            self._in_flight[number] = read
            read.task.add_done_callback(lambda _: self._forget_read(number, read))
        page = await asyncio.shield(read.task)
        self._learn_page(page)
        return page

    def _forget_read(self, number: int, read: _PageRead) -> None:
        if self._in_flight.get(number) is read:
            del self._in_flight[number]
        if not read.task.cancelled():
            read.task.exception()

    async def _read(self, number: int, purpose: PageReadPurpose) -> PortalPage:
        page = await self._client.page(number)
        self.on_page_read(purpose)
        return page

    def _learn_page(self, page: PortalPage) -> None:
        for customer in page.customers:
            self.learn(customer.id, customer.dossier_number, page.number)

    # -- the index -----------------------------------------------------------------------

    async def _first_index(self) -> None:
        """Wait for the first complete index, starting its build if none runs (a failed
        build fails its waiters, who retry as for any upstream error)."""
        build = self._first_build
        if build is None or (build.done() and (build.cancelled() or build.exception())):
            build = self._first_build = asyncio.create_task(self._build(paced=False))
        await asyncio.shield(build)

    async def _build(self, *, paced: bool) -> None:
        """Read the whole listing into a new index, then put it in place of the old one.

        The first build runs unpaced: misses are waiting on it. A rebuild is paced at
        `refresh_pages_per_s`, so it never competes with events for the portal.
        """
        index = _Index()
        number, last_page = 1, 0
        while True:
            page = await self._read(number, "refresh")
            for customer in page.customers:
                index.learn(customer.id, customer.dossier_number, page.number)
            if page.customers:
                last_page = number
            if not page.has_next:
                break
            number += 1
            if paced:
                await self._sleep(self._refresh_interval_s)
        self._index, self._last_page = index, last_page
        self._misses.clear()
        self._indexed = True
        self.builds += 1

    async def _keep_fresh(self) -> None:
        """The first index at once, then a paced rebuild every `ttl_s`; a failed build is
        retried after `retry_s` (lookups keep using the index they have)."""
        while True:
            try:
                if self._indexed:
                    await self._build(paced=True)
                else:
                    await self._first_index()
            except Exception as error:
                log.warning("portal index build failed; retrying", error=str(error))
                await self._sleep(self._retry_s)
                continue
            await self._sleep(self._ttl_s)

    def start(self) -> None:
        if self._refresher is None:
            self._refresher = asyncio.create_task(self._keep_fresh())

    async def stop(self) -> None:
        for task in (self._refresher, self._first_build):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._refresher = None


def _first(matches: Callable[[PortalCustomer], bool], page: PortalPage) -> PortalCustomer | None:
    return next((c for c in page.customers if matches(c)), None)
