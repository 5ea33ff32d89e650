"""A stateful fake of the MijnKlantportaal customers API, for tests and the demo.

It serves `GET /v1/customers?page=N` in the paginated shape of
`specs/mijnklantportaal-customers-api.txt`, including the spec's quirk: `next_page_url` ends in a
stray comma (`...?page=2,`), so a client that follows the URL instead of counting pages breaks
here as it would against the real portal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from app.sandbox.simulators.recording import (
    Faults,
    RecordedRequest,
    gated_app,
    insert_record,
    update_record,
)

CUSTOMER_FIELDS = (
    "companyName",
    "address",
    "zipCode",
    "city",
    "primaryEmail",
    "phone",
    "integration",
    "integrationId",
    "customerGroups",
)
PORTAL_TIMEZONE = ZoneInfo("Europe/Amsterdam")


def _requested_page(request: Request) -> int:
    """The `page` query parameter; missing or unusable pages count as page 1, as Laravel does."""
    try:
        page = int(request.query_params.get("page", "1"))
    except ValueError:
        return 1
    return max(page, 1)


class PortalSimulator:
    """Holds portal customers in insertion order and lists them page by page."""

    def __init__(self, *, token: str, per_page: int = 15) -> None:
        self.per_page = per_page
        self.requests: list[RecordedRequest] = []
        self.faults = Faults()
        self._customers: dict[str, dict[str, Any]] = {}
        self.app = gated_app(
            [Mount("/v1", routes=[Route("/customers", self._list_customers)])],
            token=token,
            faults=self.faults,
            requests=self.requests,
        )

    def add_customer(
        self,
        *,
        customer_id: str,
        company_name: str | None,
        address: str | None,
        zip_code: str | None,
        city: str | None,
        primary_email: str | None,
        phone: str | None,
        integration: str = "anva",
        integration_id: str | None = None,
        customer_groups: list[str] | None = None,
    ) -> dict[str, Any]:
        """Add a customer at the end of the listing; `integrationId` holds an ANVA dossier number."""
        return insert_record(
            self._customers,
            customer_id,
            {
                "id": customer_id,
                "companyName": company_name,
                "address": address,
                "zipCode": zip_code,
                "city": city,
                "primaryEmail": primary_email,
                "phone": phone,
                "integration": integration,
                "integrationId": integration_id,
                "customerGroups": customer_groups or [],
                "createdAt": datetime.now(PORTAL_TIMEZONE).isoformat(timespec="seconds"),
            },
        )

    def update_customer(self, customer_id: str, **fields: Any) -> None:
        """Change a customer's fields, named as in the API's JSON (`primaryEmail`, `zipCode`, ...)."""
        update_record(self._customers[customer_id], fields, editable=CUSTOMER_FIELDS)

    def remove_customer(self, customer_id: str) -> None:
        """Delete a customer; the ones after it move up a place in the listing."""
        del self._customers[customer_id]

    async def _list_customers(self, request: Request) -> JSONResponse:
        page = _requested_page(request)
        path = str(request.url.replace(query=""))
        customers = list(self._customers.values())
        offset = (page - 1) * self.per_page
        data = customers[offset : offset + self.per_page]
        has_next = offset + self.per_page < len(customers)
        return JSONResponse(
            {
                "current_page": page,
                "data": data,
                "first_page_url": f"{path}?page=1",
                "from": offset + 1 if data else None,
                "next_page_url": f"{path}?page={page + 1}," if has_next else None,
                "path": path,
                "per_page": self.per_page,
                "prev_page_url": f"{path}?page={page - 1}" if page > 1 else None,
                "to": offset + len(data) if data else None,
            }
        )
