"""What the fake ANVA and portal APIs share: a request log, injected faults and bearer auth.

Both simulators put one ASGI middleware, `ApiGate`, in front of their routes, so a test can
assert on what an API received (`RecordedRequest`) and make it misbehave (`Faults`) the same
way for either API. Faults are applied before authentication because they stand for the
infrastructure in front of the API (a load balancer answering 503, a slow network).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the API saw it.

    `at` is the event loop's clock (seconds) when the request arrived, so tests that run on a
    fake loop clock (looptime) measure intervals on the same clock as the code under test.
    `query` is kept apart from `path` so the portal's page numbers can be asserted on.
    """

    at: float
    method: str
    path: str
    status: int
    query: str = ""


class Faults:
    """Misbehaviour to inject into the next requests, whatever their route or credentials."""

    def __init__(self) -> None:
        self._failures: list[int] = []
        self._delays_s: list[float] = []
        self._down = False

    def fail_next(self, n: int, *, status: int = 503) -> None:
        """Answer the next `n` requests with `status` instead of serving them."""
        self._failures.extend([status] * n)

    def delay_next(self, n: int, seconds: float) -> None:
        """Hold each of the next `n` requests for `seconds` before handling it."""
        self._delays_s.extend([seconds] * n)

    def down(self, is_down: bool = True) -> None:
        """Answer 503 to every request until called again with False."""
        self._down = is_down

    async def intercept(self) -> Response | None:
        """Apply the next pending delay, then return the failure to answer with, if any."""
        if self._delays_s:
            await asyncio.sleep(self._delays_s.pop(0))
        if self._down:
            return JSONResponse({"message": "Service Unavailable"}, status_code=503)
        if self._failures:
            status = self._failures.pop(0)
            return JSONResponse({"message": f"Injected failure {status}"}, status_code=status)
        return None


class ApiGate:
    """ASGI middleware that records every request, injects faults and checks the bearer token."""

    def __init__(
        self, app: ASGIApp, *, token: str, faults: Faults, requests: list[RecordedRequest]
    ) -> None:
        self.app = app
        self.token = token
        self.faults = faults
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        arrived_at = asyncio.get_running_loop().time()
        answered: list[int] = []

        async def send_and_note_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered.append(message["status"])
            await send(message)

        refusal = await self.faults.intercept()
        if refusal is None and request.headers.get("authorization") != f"Bearer {self.token}":
            refusal = JSONResponse({"message": "Unauthenticated."}, status_code=401)
        try:
            if refusal is None:
                await self.app(scope, receive, send_and_note_status)
            else:
                await refusal(scope, receive, send_and_note_status)
        finally:
            self.requests.append(
                RecordedRequest(
                    at=arrived_at,
                    method=request.method,
                    path=request.url.path,
                    status=answered[0] if answered else 500,
                    query=request.url.query,
                )
            )


def gated_app(
    routes: Iterable[BaseRoute], *, token: str, faults: Faults, requests: list[RecordedRequest]
) -> Starlette:
    """Build a simulator's Starlette app with `ApiGate` in front of its routes."""
    return Starlette(
        routes=list(routes),
        middleware=[Middleware(ApiGate, token=token, faults=faults, requests=requests)],
    )


def insert_record(
    store: dict[Any, dict[str, Any]], key: Any, record: dict[str, Any]
) -> dict[str, Any]:
    """Store a new record under `key` and return a copy of it, refusing to replace one.

    Copies on the way in and out keep the API's state apart from the caller's dicts.
    """
    if key in store:
        raise ValueError(f"{key!r} already exists")
    store[key] = copy.deepcopy(record)
    return copy.deepcopy(record)


def update_record(
    record: MutableMapping[str, Any], fields: Mapping[str, Any], *, editable: Iterable[str]
) -> None:
    """Overwrite fields of a stored record, refusing names the API does not have.

    A misspelt field name in a test would otherwise pass silently and test nothing. Values are
    copied so that a caller mutating its own dict later does not change what the API holds.
    """
    unknown = set(fields) - set(editable)
    if unknown:
        raise KeyError(f"not an editable field: {sorted(unknown)}")
    record.update(copy.deepcopy(dict(fields)))
