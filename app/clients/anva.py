"""ANVA Hub customer API client: the integration's accounts and contracts.

Every endpoint answers `{"data": {"items": [...]}}`; the client unwraps it into models.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from app.clients._http import json_object, raise_for_status, send
from app.errors import UpstreamUnavailable

API = "ANVA"


class _AnvaModel(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)


class AnvaAccount(_AnvaModel):
    id: str
    name: str | None = None
    email: str | None = None
    firstName: str | None = None
    middleName: str | None = None
    lastName: str | None = None
    dossiers: dict[str, str] = Field(default_factory=dict)
    groupIds: list[str] = Field(default_factory=list)

    def holds(self, dossier_number: str) -> bool:
        return dossier_number in self.dossiers.values()


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
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: str | None = None


M = TypeVar("M", bound=BaseModel)


class AnvaClient:
    """Takes a long-lived `httpx.AsyncClient` whose base URL is `ANVA_BASE_URL`."""

    def __init__(self, http: httpx.AsyncClient, token: SecretStr) -> None:
        self._http = http
        self._token = token

    async def _raw_items(self, path: str) -> list[Any] | None:
        """`data.items` as sent, or None when ANVA answers 404."""
        request = self._http.build_request("GET", path.lstrip("/"), headers=self._headers())
        response = await send(self._http, request, api=API)
        if response.status_code == 404:
            return None
        raise_for_status(response, api=API)
        items = json_object(response, api=API).get("data", {}).get("items")
        if not isinstance(items, list):
            raise UpstreamUnavailable(f"{API} answered without data.items at {path}")
        return items

    async def _items(self, path: str, model: type[M]) -> list[M] | None:
        items = await self._raw_items(path)
        try:
            return None if items is None else [model.model_validate(i) for i in items]
        except ValidationError as error:
            raise UpstreamUnavailable(f"{API} answered an unexpected item at {path}") from error

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token.get_secret_value()}"}

    async def accounts(self) -> list[AnvaAccount]:
        return await self._items("/account/mine", AnvaAccount) or []

    async def account_for_dossier(self, dossier_number: str) -> AnvaAccount | None:
        """The account whose `dossiers` map holds this dossier number."""
        return next((a for a in await self.accounts() if a.holds(dossier_number)), None)

    async def organisations(self) -> list[AnvaOrganisation]:
        return await self._items("/organization/organizations/mine", AnvaOrganisation) or []

    async def permissions(self) -> list[Any]:
        return await self._raw_items("/permission/permissions/mine") or []

    async def contracts(self) -> list[AnvaContract]:
        return await self._items("/contract/contracts/mycontracts", AnvaContract) or []

    async def contract(self, contract_id: str) -> AnvaContract | None:
        """The contract, or None when ANVA does not know it."""
        found = await self._items(
            f"/contract/contracts/{quote(contract_id, safe='')}/mine", AnvaContract
        )
        return found[0] if found else None
