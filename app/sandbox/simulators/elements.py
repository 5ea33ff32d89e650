"""A strict, stateful simulator of the Faster Forward Elements API 1.9.6.

It exists so the sync can be tested against an Elements that refuses what the real
one refuses: the documented rate limits (5/s, 100,000/day, counted over every request,
token requests included), the 25 MB body limit, OAuth tokens and scopes, and the
spec's JSON Schemas. Every request is recorded so tests can prove how the client
behaved (pacing, retries, writes), and faults can be injected to exercise recovery.

Each request passes one gate, in this order: rate limits, body size, token (data
routes only), injected faults (data routes only), then the endpoint itself.
"""

from __future__ import annotations

import json
import time
from asyncio import sleep
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.clients.limiter import AMSTERDAM, today_in_amsterdam
from app.sandbox.simulators.elements_faults import INJECTED_FAULT_BODY, Faults
from app.sandbox.simulators.elements_oauth import READ, WRITE, TokenServer
from app.sandbox.simulators.elements_routes import ElementsApi
from app.sandbox.simulators.elements_schemas import ValidationFailed
from app.sandbox.simulators.elements_state import Dossier, Store, inspect_dossier, stamp

__all__ = ["ElementsSimulator", "Faults", "RecordedRequest"]

_WRITES = frozenset({"POST", "PATCH"})


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator received it, with the status it was answered."""

    at: float
    method: str
    path: str
    status: int
    body: Any | None
    query: str = ""
    """The query string without the access token."""


class ElementsSimulator:
    """Elements on loopback: serve ``app`` with uvicorn or an ``httpx.ASGITransport``."""

    def __init__(
        self,
        client_id: str = "elements-sync",
        client_secret: str = "s3cret",
        organisation: str = "4242",
        *,
        rate_limit: int = 5,
        daily_limit: int = 100_000,
        token_ttl_s: float = 3600.0,
        max_body_bytes: int = 25 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], date] = today_in_amsterdam,
    ) -> None:
        self.faults = Faults()
        self._rate_limit = rate_limit
        self._daily_limit = daily_limit
        self._max_body_bytes = max_body_bytes
        self._clock = clock
        self._today = today
        self._accepted: deque[float] = deque()  # arrival times of accepted requests, last 1 s
        self._day: tuple[date, int] | None = None  # (day, accepted requests that day)
        self._records: dict[int, RecordedRequest] = {}  # arrival number -> request
        self._arrivals = 0
        self._writes = 0
        self._store = Store()
        self._tokens = TokenServer(client_id, client_secret, organisation, token_ttl_s, clock)
        routes = [
            Route("/oauth/access_token", self._tokens.endpoint, methods=["POST"]),
            *ElementsApi(self._store, today).routes(),
        ]
        self.app = Starlette(
            routes=routes,
            middleware=[Middleware(self._gate)],
            exception_handlers={HTTPException: _http_error, ValidationFailed: _validation_error},
        )

    # --- inspection -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every answered request, in arrival order (a delayed one keeps its place)."""
        return [self._records[n] for n in sorted(self._records)]

    def remove_klant(self, dossier_id: int, klant_id: int) -> None:
        """What a person can do in the Elements UI and the API cannot: remove a klant."""
        del self._store.dossiers[dossier_id].klanten[klant_id]

    def unset_correspondentieadres(self, dossier_id: int) -> None:
        """A hand edit in the Elements UI: the dossier no longer points at an address."""
        self._store.dossiers[dossier_id].standaard_correspondentieadres = None

    def add_dossier(self, relatienummer: str, *, kantoor_id: int, dossierstatus_id: int = 1) -> int:
        """A klantdossier a person made in the Elements UI (no request recorded); its id."""
        data = {
            "omschrijving": f"Klantdossier {relatienummer}",
            "relatienummer": relatienummer,
            "dossierstatus": {"id": dossierstatus_id},
            "kantoor": {"id": kantoor_id},
        }
        dossier = Dossier(self._store.new_id(), data, datetime.now(AMSTERDAM))
        self._store.dossiers[dossier.id] = dossier
        return dossier.id

    def delete_dossier(self, dossier_id: int) -> None:
        """A person deletes the klantdossier in the Elements UI: it keeps its relatienummer,
        and its `deleted` says when."""
        self._store.dossiers[dossier_id].deleted = stamp(datetime.now(AMSTERDAM))

    def renumber_dossier(self, dossier_id: int, relatienummer: str) -> None:
        """A person gives the klantdossier another relatienummer in the Elements UI."""
        self._store.dossiers[dossier_id].data["relatienummer"] = relatienummer

    def writes_to(self, dossier_id: int) -> list[RecordedRequest]:
        """The answered writes under this klantdossier's path."""
        prefix = f"/api/data/klantdossiers/{dossier_id}"
        return [
            r
            for r in self.requests
            if r.method in _WRITES and (r.path == prefix or r.path.startswith(prefix + "/"))
        ]

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token issued so far."""
        return list(self._tokens.issued)

    def count_status(self, status: int) -> int:
        return sum(1 for r in self.requests if r.status == status)

    def max_in_rolling_window(self, window_s: float = 1.0) -> int:
        """Most requests arriving within any window of ``window_s`` (end exclusive)."""
        times = sorted(r.at for r in self.requests)
        best = start = 0
        for end, moment in enumerate(times):
            while moment - times[start] >= window_s:
                start += 1
            best = max(best, end - start + 1)
        return best

    def dossiers(self) -> list[dict[str, Any]]:
        return [inspect_dossier(d) for d in self._store.dossiers.values()]

    def dossier_by_relatienummer(self, nr: str) -> dict[str, Any] | None:
        for dossier in self._store.dossiers.values():
            if dossier.data.get("relatienummer") == nr:
                return inspect_dossier(dossier)
        return None

    def write_count(self) -> int:
        """Writes to ``/api/data`` the endpoint applied (answered 2xx), lost responses included."""
        return self._writes

    # --- the gate ---------------------------------------------------------------------------

    def _gate(self, app: ASGIApp) -> ASGIApp:
        async def gate(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            await self._handle(app, scope, receive, send)

        return gate

    async def _handle(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        arrival, at = self._arrivals, self._clock()
        self._arrivals += 1
        is_data = request.url.path.startswith("/api/data")
        is_write = request.method in _WRITES
        body: bytes | None = None
        refusal = self._over_limit(at)
        if refusal is None:
            body, refusal = await self._read_body(request)
        if refusal is None and is_data:
            refusal = self._tokens.authorize(
                request.query_params.get("access_token"), READ if request.method == "GET" else WRITE
            )
        if refusal is None and is_data:
            refusal = await self._injected_failure()
        if refusal is None and is_data and is_write:
            refusal = _injected_refusal(self.faults.take_refusal(scope["path"]))
        if refusal is None:
            status, messages = await _run(app, scope, body or b"")
            if is_data and is_write and 200 <= status < 300:
                self._writes += 1
            lost = self.faults.take_lost_response() if is_data and is_write else None
            if lost is None:
                for message in messages:
                    await send(message)
            else:
                refusal = JSONResponse(INJECTED_FAULT_BODY, status_code=lost)
        if refusal is not None:
            status = refusal.status_code
            await refusal(scope, receive, send)
        query = urlencode(
            [(k, v) for k, v in request.query_params.multi_items() if k != "access_token"]
        )
        self._records[arrival] = RecordedRequest(
            at, request.method, request.url.path, status, _parse_json(body), query
        )

    def _over_limit(self, at: float) -> Response | None:
        """429 when this request exceeds a limit; otherwise count it as accepted."""
        while self._accepted and self._accepted[0] <= at - 1.0:
            self._accepted.popleft()
        if len(self._accepted) >= self._rate_limit:
            return JSONResponse(
                {"error": f"Limit exceeded of {self._rate_limit} request(s) in 1 second(s)"},
                status_code=429,
            )
        today = self._today()
        used = self._day[1] if self._day and self._day[0] == today else 0
        if used >= self._daily_limit:
            return JSONResponse(
                {"error": f"Limit exceeded of {self._daily_limit:,} request(s) in one day"},
                status_code=429,
            )
        self._accepted.append(at)
        self._day = (today, used + 1)
        return None

    async def _read_body(self, request: Request) -> tuple[bytes | None, Response | None]:
        """The body, or the spec's 400 when it is larger than allowed."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body_bytes:
            return None, self._too_large(int(declared))
        body = await request.body()
        if len(body) > self._max_body_bytes:
            return None, self._too_large(len(body))
        return body, None

    def _too_large(self, received: int) -> Response:
        return JSONResponse(
            {
                "error": "Request body is groter dan toegestaan",
                "toegestaan": f"{self._max_body_bytes} bytes",
                "ontvangen": f"{received} bytes",
            },
            status_code=400,
        )

    async def _injected_failure(self) -> Response | None:
        delay = self.faults.take_delay()
        if delay > 0:
            await sleep(delay)
        status = self.faults.take_failure()
        return None if status is None else JSONResponse(INJECTED_FAULT_BODY, status_code=status)


async def _run(app: ASGIApp, scope: Scope, body: bytes) -> tuple[int, list[Message]]:
    """Run the endpoint on the already-read ``body``, holding back its response.

    Holding it back lets the gate record the status and replace the response when a
    lost-response fault is due.
    """
    messages: list[Message] = []
    replayed = False

    async def receive() -> Message:
        nonlocal replayed
        if replayed:
            return {"type": "http.disconnect"}
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, send)
    status = next(int(m["status"]) for m in messages if m["type"] == "http.response.start")
    return status, messages


def _parse_json(body: bytes | None) -> Any | None:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    names = {404: "Not found", 405: "Method not allowed"}
    return JSONResponse(
        {"error": names.get(exc.status_code, exc.detail)},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def _injected_refusal(item: tuple[str, str] | None) -> Response | None:
    return None if item is None else JSONResponse(ValidationFailed([item]).body(), status_code=400)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationFailed)
    return JSONResponse(exc.body(), status_code=400)
