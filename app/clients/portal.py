"""MijnKlantportaal customers API client, and the directory that finds a customer in it.

The portal documents no single-customer endpoint, only the paginated listing, so a
lookup is a page read. `PortalDirectory` remembers on which page each customer was
seen (a locator, never the customer's state): a lookup re-reads that one page, so the
state it returns is always current. The locator map is rebuilt by a full listing when
it is older than `ttl_s`, or when a customer is not where the map says (new, moved
or unknown); concurrent rebuilds are shared. Steady state costs one page read per
event instead of the whole listing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from app.clients._http import json_object, raise_for_status, send
from app.clients._tolerant import StrList, parse_items, php_list

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


class PortalDirectory:
    """Finds portal customers by id or by dossier number; see the module docstring."""

    def __init__(
        self,
        client: PortalClient,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._clock = clock
        self._page_of_customer: dict[str, int] = {}
        self._customer_of_dossier: dict[str, str] = {}
        self._built_at: float | None = None
        self._generation = 0
        self._rebuild_lock = asyncio.Lock()
        self.rebuilds = 0

    def _learn(self, page: PortalPage) -> None:
        for customer in page.customers:
            self._page_of_customer[customer.id] = page.number
            if customer.dossier_number:
                self._customer_of_dossier[customer.dossier_number] = customer.id

    async def _rebuild(self, seen_generation: int) -> None:
        """Full listing, unless another caller rebuilt since `seen_generation`."""
        async with self._rebuild_lock:
            if self._generation != seen_generation:
                return
            pages = await self._client.all_pages()
            self._page_of_customer.clear()
            self._customer_of_dossier.clear()
            for page in pages:
                self._learn(page)
            self._built_at = self._clock()
            self._generation += 1
            self.rebuilds += 1

    def _stale(self) -> bool:
        return self._built_at is None or self._clock() - self._built_at > self._ttl_s

    async def _find(
        self, matches: Callable[[PortalCustomer], bool], locate: Callable[[], str | None]
    ) -> PortalCustomer | None:
        """Read the page the locator names; on a miss rebuild the locators once and look again."""
        if self._stale():
            await self._rebuild(self._generation)
        for first_try in (True, False):
            generation = self._generation
            customer_id = locate()
            if customer_id in self._page_of_customer:
                page = await self._client.page(self._page_of_customer[customer_id])
                self._learn(page)
                found = next((c for c in page.customers if matches(c)), None)
                if found is not None:
                    return found
            if first_try:
                await self._rebuild(generation)
        return None

    async def by_id(self, portal_customer_id: str) -> PortalCustomer | None:
        return await self._find(lambda c: c.id == portal_customer_id, lambda: portal_customer_id)

    async def by_dossier_number(self, dossier_number: str) -> PortalCustomer | None:
        return await self._find(
            lambda c: c.dossier_number == dossier_number,
            lambda: self._customer_of_dossier.get(dossier_number),
        )
