"""The access token a request carries is read once its limiter slot is granted, never before
the wait: a token that runs out while requests queue is renewed, not sent stale.

On looptime's fake loop clock, which the limiter, the client and the Elements simulator all
read, so seconds of queueing cost no real time. Rate 4/s with no margin keeps the spacing a
power-of-two fraction of a second (0.25 s), as the limiter's own tests need (see
`tests/unit/test_limiter.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import httpx

from app.clients.limiter import ElementsLimiter
from app.sandbox.simulators.elements import ElementsSimulator
from tests.unit.test_elements_client import SECRET, elements_client
from tests.unit.test_limiter import fake_clock

TOKEN = "/oauth/access_token"


def loop_time() -> float:
    return asyncio.get_running_loop().time()


def at_rate_4() -> ElementsLimiter:
    return ElementsLimiter(rate_per_s=4, daily_limit=10_000, margin_s=0)


async def all_of(calls: list[Awaitable[object]]) -> list[object]:
    """Every call's result, or the error it raised."""
    return await asyncio.gather(*calls, return_exceptions=True)


@fake_clock
async def test_a_token_that_runs_out_while_requests_queue_is_renewed_before_it_is_sent() -> None:
    """Sixteen requests queue 4 s for their slots behind 2 s tokens (renewed after 1.8 s).

    Before: each took the token before its wait; those granted after 2 s sent it expired
    (11 answers 401), queued again behind a renewal and sent that one late too: two failed
    with a second 401, `AuthenticationFailed`, which dead-letters the event."""
    sim = ElementsSimulator(client_secret=SECRET, rate_limit=4, token_ttl_s=2, clock=loop_time)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app), base_url="http://elements"
    ) as http:
        client = elements_client(http, limiter=at_rate_4(), clock=loop_time)
        results = await all_of([client.find_dossiers(relatienummer=str(n)) for n in range(16)])

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert [r.status for r in sim.requests if r.path != TOKEN] == [200] * 16
    # A login at the first slot, then a refresh at the first slot past each renewal time.
    token_requests = [(r.at, r.status) for r in sim.requests if r.path == TOKEN]
    assert token_requests == [(0.0, 200), (2.0, 200), (4.0, 200)]
    assert len(sim.requests) == 16 + 3


@fake_clock
async def test_a_slot_granted_during_a_renewal_is_let_go_not_spent_on_another() -> None:
    """The token request takes 0.6 s; two more requests get slots meanwhile. Neither sends a
    token request of its own nor holds its slot while it waits: each lets it go, waits for
    the renewal, and takes a new slot for its request with the new token."""
    sent: list[tuple[float, str, str]] = []

    async def elements(request: httpx.Request) -> httpx.Response:
        sent.append((loop_time(), request.url.path, request.url.params.get("access_token", "")))
        if request.url.path == TOKEN:
            await asyncio.sleep(0.6)
            return httpx.Response(200, json={"access_token": "new", "expires_in": 3600})
        return httpx.Response(200, json={"_embedded": {"klantdossiers": []}})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(elements), base_url="http://elements"
    ) as http:
        client = elements_client(http, limiter=at_rate_4(), clock=loop_time)
        results = await all_of([client.find_dossiers(relatienummer=str(n)) for n in range(3)])

    assert results == [[], [], []]
    assert [path for _, path, _ in sent] == [TOKEN, *["/api/data/klantdossiers"] * 3]
    assert {token for _, path, token in sent if path != TOKEN} == {"new"}
    # Slots at 0.25 and 0.5 were let go; the data requests follow the renewal (0.6 s) a
    # spacing apart, from the first free slot on.
    assert [at for at, _, _ in sent] == [0.0, 0.75, 1.0, 1.25]
