"""MijnKlantportaal customers API client, and the directory that finds a customer in it.

The portal documents no single-customer endpoint, only the paginated listing (about 700
pages at 10,500 customers), so a lookup is a page read. `PortalDirectory` remembers on
which page each customer was seen (a locator, never the customer's state): a lookup
re-reads that page, so the state it returns is always current, and costs one request
in steady state. Locators come from a full index that a background task builds at
start and rebuilds every `PORTAL_INDEX_TTL_S`, paced (`app.clients.portal_refresh`); from
the pages events read; and from durable memory (`learn`). The index itself, pure, is
`app.clients.portal_index`; `PortalDirectory` here does the lookups.

The spec states no order for the listing and offers no way to ask for one. The
directory assumes the order the project has assumed from the start and the simulator
keeps: insertion order, so a new customer appears at the end, and a deletion moves
every later customer one place forward. What follows from it:
- the index reads the listing from its end back to page 1: a deletion while it runs
  only moves customers to pages it has yet to read, so it passes over nobody. It is
  put in place of the old one keeping what it could not see: a page a lookup read
  while it ran (newer than its own read of that page), and for one more rebuild the
  locator of a customer it did not see (moved against the order, e.g. by an insertion
  before it);
- a located customer is looked for on its page, then the page before (deletions since),
  then the page after (an insertion before it);
- new customers appear in the append region: from the highest page seen forward, at
  most `PORTAL_APPEND_PAGES` pages; when the listing goes on past that bound (a burst of
  new customers) the events behind it share one catch-up read to its end, so an
  existing customer is never called unknown. Every lookup that finds nothing reads it,
  so a customer that appears after a miss is found by the next event;
- a customer no locator knows and the append region does not show is not in the
  portal: the index is the remembered miss for every customer it does not hold, and
  it spares the full listing. That is the bounded cost of customers the portal truly
  does not know (the backfill of ANVA-only customers): the append region, one page in
  steady state;
- a customer the locators knew but found neither near its page nor in the append region
  has moved further (a mass deletion) or left the portal: only a full read of the
  listing, shared by every event waiting on one, can tell. Not in it either, its
  locator is dropped and the miss is remembered for `PORTAL_MISS_TTL_S`: that spares
  the full listing again (a stale locator learned anew, e.g. from durable memory),
  never the pages where the customer can appear now;
- the one wait: before this process's first complete index, a miss waits for that
  build, as a customer in the middle of the listing would otherwise look unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import structlog
from cachetools import TTLCache
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from app.clients._http import json_object, raise_for_status, send
from app.clients._tolerant import StrList, parse_items, php_list
from app.clients.portal_index import PageRead, PageReadPurpose, PortalIndex
from app.clients.portal_refresh import INDEX_RETRY_S, PortalIndexBuilder
from app.clients.shared_read import SharedRead, loop_time

log = structlog.get_logger(__name__)

API = "portal"
MISSES_KEPT = 100_000
"""Remembered misses at most: one per unknown customer looked up within `PORTAL_MISS_TTL_S`."""
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


class PageReader:
    """Every page read, the lookups' and the index builder's alike: numbered as it starts
    (`PortalIndex.next_sequence`, so of two sightings the newer wins whoever read them) and
    counted by purpose."""

    def __init__(
        self,
        client: PortalClient,
        index: PortalIndex,
        *,
        on_page_read: Callable[[PageReadPurpose], None] = lambda purpose: None,
    ) -> None:
        self._client = client
        self._index = index
        self._on_page_read = on_page_read

    async def read(self, number: int, purpose: PageReadPurpose) -> PageRead:
        sequence = self._index.next_sequence()
        page = await self._client.page(number)
        self._on_page_read(purpose)
        return PageRead(sequence, page)


class PortalDirectory:
    """Finds portal customers by id or by dossier number; see the module docstring.

    `start()` begins the background index (first build at once, then a paced rebuild
    every `ttl_s`); `stop()` ends it. Without `start()` (one-shot commands, tests) the
    first miss builds the index itself and no refresh follows.

    It is given the index, the page reader that numbers reads by it and the builder that
    keeps it, all three over the same `PortalIndex` (`app.wiring` builds them;
    `from_client` builds them the same way for a test or a script).
    """

    def __init__(
        self,
        index: PortalIndex,
        reader: PageReader,
        builder: PortalIndexBuilder,
        *,
        append_pages: int = 3,
        miss_ttl_s: float = 300.0,
        clock: Callable[[], float] = loop_time,
    ) -> None:
        self._index = index
        self._reader = reader
        self._builder = builder
        self._append_pages = append_pages
        self._miss_ttl_s = miss_ttl_s
        self._misses: TTLCache[tuple[str, str], bool] = TTLCache(
            maxsize=MISSES_KEPT, ttl=miss_ttl_s, timer=clock
        )
        self._pages: dict[int, SharedRead[PageRead]] = {}
        self._tail = SharedRead(self._read_tail)
        self._full = SharedRead(lambda: self._builder.build(paced=False, purpose="lookup"))

    @classmethod
    def from_client(
        cls,
        client: PortalClient,
        *,
        ttl_s: float,
        refresh_pages_per_s: float = 20.0,
        append_pages: int = 3,
        miss_ttl_s: float = 300.0,
        retry_s: float = INDEX_RETRY_S,
        clock: Callable[[], float] = loop_time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_page_read: Callable[[PageReadPurpose], None] = lambda purpose: None,
    ) -> PortalDirectory:
        """A directory over a new index, its page reader and its builder: the one place they
        are put together, for the worker's wiring and the tests alike."""
        index = PortalIndex()
        reader = PageReader(client, index, on_page_read=on_page_read)
        builder = PortalIndexBuilder(
            index,
            reader.read,
            ttl_s=ttl_s,
            refresh_pages_per_s=refresh_pages_per_s,
            retry_s=retry_s,
            sleep=sleep,
        )
        return cls(
            index, reader, builder, append_pages=append_pages, miss_ttl_s=miss_ttl_s, clock=clock
        )

    @property
    def builds(self) -> int:
        """How many complete indexes were put in place."""
        return self._index.builds

    # -- what callers tell and ask besides lookups --------------------------------------

    def learn(self, customer_id: str, dossier_number: str | None, page: int) -> None:
        """Seed a locator, e.g. from durable memory: where the customer was last found.

        It ranks below every page read (sequence 0), and the first index drops it unless
        that index saw the customer there too.
        """
        self._index.learn(customer_id, dossier_number, page)

    def page_of(self, customer_id: str) -> int | None:
        """The page the customer was last seen on (after a lookup: where it was found)."""
        return self._index.page_of(customer_id)

    # -- lookups -------------------------------------------------------------------------

    async def by_id(self, portal_customer_id: str, *, fresh_after: float) -> PortalCustomer | None:
        """The customer as a page read that started after `fresh_after` (the caller's event's
        arrival) shows it; likewise `by_dossier_number`."""
        return await self._find(
            fresh_after,
            ("id", portal_customer_id),
            lambda c: c.id == portal_customer_id,
            lambda: portal_customer_id,
        )

    async def by_dossier_number(
        self, dossier_number: str, *, fresh_after: float
    ) -> PortalCustomer | None:
        return await self._find(
            fresh_after,
            ("dossier", dossier_number),
            lambda c: c.dossier_number == dossier_number,
            lambda: self._index.customer_of_dossier(dossier_number),
        )

    async def _find(
        self,
        fresh_after: float,
        miss_key: tuple[str, str],
        matches: Callable[[PortalCustomer], bool],
        locate: Callable[[], str | None],
    ) -> PortalCustomer | None:
        """Near its locator; else (before the first index: once it is built, near its
        locator again) in the append region, which every miss reads, remembered or not;
        else, for a customer the locators still place somewhere, in a full read of the
        listing, unless one already missed it within `miss_ttl_s`."""
        found = await self._where_located(fresh_after, matches, locate)
        if found is not None:
            return found
        if not self._index.indexed:
            await self._builder.first_index()
            found = await self._where_located(fresh_after, matches, locate)
            if found is not None:
                return found
        found = await self._in_append_region(fresh_after, matches, locate)
        if found is not None:
            return found
        customer_id = locate()
        if self._index.page_of(customer_id) is None or self._missed_lately(miss_key):
            return None
        await self._full.get(fresh_after)
        found = await self._where_located(fresh_after, matches, locate)
        if found is None:
            if customer_id is not None:
                self._index.forget(customer_id)
            self._remember_miss(miss_key)
        return found

    def _missed_lately(self, miss_key: tuple[str, str]) -> bool:
        return miss_key in self._misses

    def _remember_miss(self, miss_key: tuple[str, str]) -> None:
        if self._miss_ttl_s > 0:
            self._misses[miss_key] = True

    async def _where_located(
        self,
        fresh_after: float,
        matches: Callable[[PortalCustomer], bool],
        locate: Callable[[], str | None],
    ) -> PortalCustomer | None:
        """Its page, the page before, the page after; a read that shows the customer
        linked elsewhere (the locators no longer place it) ends the search."""
        page = self._index.page_of(locate())
        if page is None:
            return None
        for number in (page, page - 1, page + 1):
            if number < 1:
                continue
            if self._index.page_of(locate()) is None:
                return None
            found = _first(matches, await self._lookup_page(number, fresh_after))
            if found is not None:
                return found
        return None

    async def _in_append_region(
        self,
        fresh_after: float,
        matches: Callable[[PortalCustomer], bool],
        locate: Callable[[], str | None],
    ) -> PortalCustomer | None:
        """From the highest page seen forward; an empty page there means the listing shrank
        (deletions), so the end is looked for one page back instead.

        When the bound is reached before the listing's end, the locators are behind the
        listing (a burst of new customers): answering None would call an existing customer
        unknown, so the event waits for a catch-up to the end, which every event behind
        the same burst shares (`_tail`), and then looks where that located the customer.
        """
        number = max(self._index.last_page, 1)
        for _ in range(self._append_pages):
            page = await self._lookup_page(number, fresh_after)
            found = _first(matches, page)
            if found is not None:
                return found
            if not page.customers and number > 1:
                number -= 1
                self._index.last_page = min(self._index.last_page, number)
            elif page.has_next:
                number += 1
            else:
                return None
        await self._tail.get(fresh_after)
        return await self._where_located(fresh_after, matches, locate)

    async def _read_tail(self) -> None:
        """Every page from the highest page seen to the listing's end, into the locators."""
        number = max(self._index.last_page, 1)
        while True:
            read = await self._reader.read(number, "lookup")
            self._index.learn_read(read)
            if not read.page.has_next:
                return
            number += 1

    async def _lookup_page(self, number: int, fresh_after: float) -> PortalPage:
        """A page read for a lookup: joins a read of the same page in flight that started
        after `fresh_after`, else reads (`SharedRead`, finished reads not kept: the
        directory keeps locators, never state); what it shows becomes the page's locators."""
        shown = await self._page(number).get(fresh_after)
        self._index.learn_read(shown)
        return shown.page

    def _page(self, number: int) -> SharedRead[PageRead]:
        """The shared read of one page, kept once made (an empty one per page read)."""
        if (shared := self._pages.get(number)) is None:
            shared = self._pages[number] = SharedRead(
                lambda: self._reader.read(number, "lookup"), reuse_finished=False
            )
        return shared

    def start(self) -> None:
        """Begin the background index: the first build at once, then a paced rebuild."""
        self._builder.start()

    async def stop(self) -> None:
        await self._builder.stop()


def _first(matches: Callable[[PortalCustomer], bool], page: PortalPage) -> PortalCustomer | None:
    return next((c for c in page.customers if matches(c)), None)
