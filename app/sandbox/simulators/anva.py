"""A stateful fake of the ANVA Hub customer API, for tests and the demo.

It answers the five endpoints of `specs/anva-hub-customer-api.txt` under `/api`, each wrapped
as `{"data": {"items": [...]}}`. As in the service's contract, the token is the integration's
own, so the "mine" endpoints list every account, organisation and contract the simulator holds.
The `/account/mine` body is serialised once per change of the accounts (about 2 MB at 6,667
accounts), so a benchmark at office scale measures the worker, not the simulator's JSON encoder.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from app.sandbox.simulators.recording import (
    Faults,
    RecordedRequest,
    gated_app,
    insert_record,
    update_record,
)

ACCOUNT_FIELDS = ("firstName", "middleName", "lastName", "email", "dossiers")
CONTRACT_FIELDS = ("dossierNumber", "format", "metadata", "status")


def _items(items: list[Any]) -> JSONResponse:
    return JSONResponse({"data": {"items": items}})


class AnvaSimulator:
    """Holds accounts, organisations, permissions and contracts, and serves them as ANVA does."""

    def __init__(self, *, token: str) -> None:
        self.permissions: list[str] = []
        self.requests: list[RecordedRequest] = []
        self.faults = Faults()
        self._accounts: dict[int | str, dict[str, Any]] = {}
        self._accounts_body: bytes | None = None
        self._organisations: dict[str, dict[str, Any]] = {}
        self._contracts: dict[str, dict[str, Any]] = {}
        routes = [
            Route("/account/mine", self._list_accounts),
            Route("/organization/organizations/mine", self._list_organisations),
            Route("/permission/permissions/mine", self._list_permissions),
            Route("/contract/contracts/mycontracts", self._list_contracts),
            Route("/contract/contracts/{contract_id}/mine", self._get_contract),
        ]
        self.app = gated_app(
            [Mount("/api", routes=routes)],
            token=token,
            faults=self.faults,
            requests=self.requests,
        )

    def add_account(
        self,
        *,
        account_id: int,
        first_name: str | None,
        middle_name: str | None,
        last_name: str | None,
        email: str | None,
        dossiers: dict[str, str],
        name: str | None = None,
    ) -> dict[str, Any]:
        """Add an account; its username (`name`) is its email unless given, as the Hub creates it."""
        self._accounts_body = None
        return insert_record(
            self._accounts,
            account_id,
            {
                "id": account_id,
                "name": email if name is None else name,
                "email": email,
                "firstName": first_name,
                "middleName": middle_name,
                "lastName": last_name,
                "dossiers": dossiers,
                "groupIds": ["101"],
            },
        )

    def add_account_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """Add an account exactly as given, for tests of records the Hub writes oddly.

        Nothing is filled in or checked: the record is served verbatim, after the accounts
        added before it. It cannot be updated afterwards.
        """
        self._accounts_body = None
        return insert_record(self._accounts, f"record-{len(self._accounts)}", record)

    def update_account(self, account_id: int, **fields: Any) -> None:
        """Change an account's fields, named as in the API's JSON (`firstName`, `dossiers`, ...)."""
        update_record(self._accounts[account_id], fields, editable=ACCOUNT_FIELDS)
        self._accounts_body = None

    def add_organisation(
        self,
        *,
        organisation_id: str,
        name: str,
        type: str = "insurer",
        code: str = "",
        icon: str = "",
    ) -> dict[str, Any]:
        """Add an organisation; accounts refer to it by id in their `dossiers`."""
        return insert_record(
            self._organisations,
            organisation_id,
            {
                "id": organisation_id,
                "type": type,
                "code": code,
                "name": name,
                "icon": icon,
            },
        )

    def add_contract(
        self,
        *,
        contract_id: str,
        dossier_number: str,
        format: str,
        status: str,
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        """Add a contract of the dossier `dossier_number`."""
        return insert_record(
            self._contracts,
            contract_id,
            {
                "id": contract_id,
                "dossierNumber": dossier_number,
                "format": format,
                "metadata": metadata,
                "status": status,
            },
        )

    def update_contract(self, contract_id: str, **fields: Any) -> None:
        """Change a contract's fields, named as in the API's JSON (`status`, `metadata`, ...)."""
        update_record(self._contracts[contract_id], fields, editable=CONTRACT_FIELDS)

    async def _list_accounts(self, request: Request) -> Response:
        if self._accounts_body is None:
            self._accounts_body = bytes(_items(list(self._accounts.values())).body)
        return Response(self._accounts_body, media_type="application/json")

    async def _list_organisations(self, request: Request) -> JSONResponse:
        return _items(list(self._organisations.values()))

    async def _list_permissions(self, request: Request) -> JSONResponse:
        return _items(self.permissions)

    async def _list_contracts(self, request: Request) -> JSONResponse:
        return _items(list(self._contracts.values()))

    async def _get_contract(self, request: Request) -> JSONResponse:
        contract = self._contracts.get(request.path_params["contract_id"])
        if contract is None:
            return JSONResponse({"message": "Contract not found"}, status_code=404)
        return _items([contract])
