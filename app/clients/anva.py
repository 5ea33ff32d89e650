"""ANVA Hub customer API client: the integration's accounts and contracts.

Every endpoint answers `{"data": {"items": [...]}}`; the client unwraps it into models.
An event's account is found in one `/account/mine` read shared by concurrent events
(`SharedRead`: only a read that started after the event arrived), through an index of
dossier number → raw account built once per read.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from app.clients._http import json_object, raise_for_status, send
from app.clients._tolerant import PhpMap, StrList, parse_items, php_list, php_map, read_record
from app.clients.shared_read import SharedRead
from app.errors import UpstreamUnavailable

API = "ANVA"


class _AnvaModel(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)


def dossier_numbers(value: Any) -> dict[str, str]:
    """An account's `dossiers` (organisation id → dossier number), read as PHP writes it.

    `[]` (PHP's empty map) and `null` hold no dossiers; a list is keyed by position (the
    organisation ids are lost, but only the numbers are looked up); a number is a dossier
    number like any other; entries that are neither text nor a number are left out.
    """
    numbers = (
        (organisation, _number_text(number)) for organisation, number in php_map(value).items()
    )
    return {organisation: number for organisation, number in numbers if number is not None}


def _number_text(number: Any) -> str | None:
    """One entry of `dossiers` as a dossier number, or None when it is neither text nor a number."""
    if isinstance(number, str):
        return number.strip()
    if isinstance(number, int) and not isinstance(number, bool):
        return str(number)
    return None


class AnvaAccount(_AnvaModel):
    id: str
    name: str | None = None
    email: str | None = None
    firstName: str | None = None
    middleName: str | None = None
    lastName: str | None = None
    dossiers: dict[str, str] = Field(default_factory=dict)
    groupIds: StrList = Field(default_factory=list)

    @field_validator("dossiers", mode="before")
    @classmethod
    def _read_dossiers(cls, value: Any) -> dict[str, str]:
        return dossier_numbers(value)


class AnvaOrganisation(_AnvaModel):
    id: str
    type: str | None = None
    code: str | None = None
    name: str | None = None
    icon: str | None = None


class AnvaContract(_AnvaModel):
    id: str
    dossierNumber: str
    format: str | None = None
    metadata: PhpMap = Field(default_factory=dict)
    status: str | None = None


M = TypeVar("M", bound=BaseModel)

AccountIndex = dict[str, Any]
"""Dossier number → the raw account whose `dossiers` holds it (the first, as listed)."""


def index_accounts(raw_accounts: list[Any]) -> AccountIndex:
    """Index the raw listing by dossier number; accounts are read as models only when asked
    for, so an odd field in one account never fails an event about another."""
    index: AccountIndex = {}
    for raw in raw_accounts:
        dossiers = raw.get("dossiers") if isinstance(raw, dict) else None
        for entry in php_map(dossiers).values():
            number = _number_text(entry)
            if number is not None:
                index.setdefault(number, raw)
    return index


class AnvaClient:
    """Takes a long-lived `httpx.AsyncClient` whose base URL is `ANVA_BASE_URL`."""

    def __init__(
        self, http: httpx.AsyncClient, token: SecretStr, *, listing_min_interval_s: float = 0.0
    ) -> None:
        self._http = http
        self._token = token
        self._account_index = SharedRead(
            self._read_account_index, min_interval_s=listing_min_interval_s
        )

    async def _raw_items(self, path: str, *, missing_ok: bool = True) -> list[Any] | None:
        """`data.items` as sent, or None when ANVA answers 404 (an error unless `missing_ok`)."""
        request = self._http.build_request("GET", path.lstrip("/"), headers=self._headers())
        response = await send(self._http, request, api=API)
        if response.status_code == 404 and missing_ok:
            return None
        raise_for_status(response, api=API)
        data = json_object(response, api=API).get("data")
        items = php_list(data.get("items")) if isinstance(data, dict) else None
        if items is None:
            raise UpstreamUnavailable(f"{API} answered without data.items at {path}")
        return items

    async def _items(self, path: str, model: type[M]) -> list[M] | None:
        """The items that can be read as `model`; an odd one is skipped, not fatal."""
        items = await self._raw_items(path)
        return None if items is None else parse_items(model, items, api=API)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.get_secret_value()}"}

    async def accounts(self) -> list[AnvaAccount]:
        return await self._items("/account/mine", AnvaAccount) or []

    async def all_dossier_numbers(self) -> list[str]:
        """Every dossier number in the integration's accounts, read from the raw `dossiers`
        maps, so an account with an odd field elsewhere still contributes its dossiers."""
        numbers: list[str] = []
        for raw in await self._raw_items("/account/mine") or []:
            dossiers = raw.get("dossiers") if isinstance(raw, dict) else None
            numbers += [n for n in dossier_numbers(dossiers).values() if n]
        return numbers

    async def _read_account_index(self) -> AccountIndex:
        return index_accounts(await self._raw_items("/account/mine") or [])

    @property
    def account_listings(self) -> int:
        """`/account/mine` reads started for `account_for_dossier` (shared between events)."""
        return self._account_index.reads

    async def account_for_dossier(
        self, dossier_number: str, *, fresh_after: float
    ) -> AnvaAccount | None:
        """The account whose `dossiers` map holds this dossier number, from a listing read
        that started after `fresh_after`, the caller's event's arrival (shared with
        concurrent events).

        Only that account is read as a model, so an odd field in anyone else's account
        cannot stop this event; an odd field in its own fails it, naming the field.
        """
        raw = (await self._account_index.get(fresh_after)).get(dossier_number)
        if raw is None:
            return None
        what = f"account of dossier {dossier_number}"
        return read_record(AnvaAccount, raw, api=API, what=what)

    async def probe(self) -> None:
        """The organisations: the smallest listing, enough to show whether ANVA answers."""
        await self._raw_items("/organization/organizations/mine")

    async def organisations_seen(self) -> int:
        """How many organisations the token may see, for `python -m app check`: the probe's
        read, where a 404 is an error (a base URL that misses the spec's paths), not "none"."""
        return len(
            await self._raw_items("/organization/organizations/mine", missing_ok=False) or []
        )

    async def organisations(self) -> list[AnvaOrganisation]:
        return await self._items("/organization/organizations/mine", AnvaOrganisation) or []

    async def contract(self, contract_id: str) -> AnvaContract | None:
        """The contract, or None when ANVA does not know it."""
        found = await self._raw_items(f"/contract/contracts/{quote(contract_id, safe='')}/mine")
        if not found:
            return None
        return read_record(AnvaContract, found[0], api=API, what=f"contract {contract_id}")
