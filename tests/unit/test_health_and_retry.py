"""Outage detection at the transport, the outage probe, and the retry policy's arithmetic.

Nothing sleeps: the probe's schedule runs on looptime's fake loop clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs
from tenacity import RetryCallState

from app.clients._http import raise_for_status, retry_after_s
from app.clients.anva import AnvaClient
from app.clients.health import HealthTransport, UpstreamHealth, UpstreamProbe
from app.errors import RateLimited, UpstreamRejected, UpstreamUnavailable
from app.retry import backoff_wait, should_stop
from app.settings import RetrySettings


def transport_answering(statuses: list[int | None]) -> httpx.MockTransport:
    """Answers each request with the next status; None stands for a refused connection."""
    pending = iter(statuses)

    def answer(request: httpx.Request) -> httpx.Response:
        status = next(pending)
        if status is None:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(status)

    return httpx.MockTransport(answer)


async def call(health: UpstreamHealth, statuses: list[int | None]) -> None:
    transport = HealthTransport(transport_answering(statuses), "ANVA", health)
    async with httpx.AsyncClient(transport=transport, base_url="http://anva") as http:
        for _ in statuses:
            with contextlib.suppress(httpx.ConnectError):
                await http.get("/account/mine")


async def test_an_api_is_down_after_five_unreachable_answers_in_a_row() -> None:
    health = UpstreamHealth(threshold=5)

    await call(health, [503, None, 502, 500, None])

    assert health.down == ["ANVA"]


async def test_sporadic_errors_between_answers_are_no_outage() -> None:
    health = UpstreamHealth(threshold=5)

    await call(health, [503, 503, 200, 503, 503, 404, 503])

    assert health.down == []


async def test_the_first_answer_after_an_outage_ends_it() -> None:
    health = UpstreamHealth(threshold=2)
    await call(health, [None, None])

    await call(health, [200])

    assert health.down == []


class AnvaUpstream:
    """ANVA that answers 503 while `down`, and its organisations otherwise; counts requests."""

    def __init__(self) -> None:
        self.down = True
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if self.down:
            return httpx.Response(503)
        return httpx.Response(200, json={"data": {"items": []}})


@asynccontextmanager
async def anva_behind(health: UpstreamHealth, upstream: AnvaUpstream) -> AsyncIterator[AnvaClient]:
    transport = HealthTransport(httpx.MockTransport(upstream), "ANVA", health)
    async with httpx.AsyncClient(transport=transport, base_url="http://anva/api") as http:
        yield AnvaClient(http, SecretStr("token"))


async def test_a_probe_asks_only_the_apis_that_are_down() -> None:
    health = UpstreamHealth(threshold=1)
    health.record("ANVA", reachable=False)
    health.record("portal", reachable=True)
    asked: list[str] = []

    async def probe_anva() -> None:
        asked.append("ANVA")

    async def probe_portal() -> None:
        asked.append("portal")

    probe = UpstreamProbe(
        health, {"ANVA": probe_anva, "portal": probe_portal}, interval_s=5, max_interval_s=30
    )
    await probe.probe_down_apis()

    assert asked == ["ANVA"]


async def test_a_reachable_probe_answer_ends_the_outage_and_says_so() -> None:
    health, upstream = UpstreamHealth(threshold=2), AnvaUpstream()
    async with anva_behind(health, upstream) as anva:
        probe = UpstreamProbe(health, {"ANVA": anva.probe}, interval_s=5, max_interval_s=30)
        await probe.probe_down_apis()
        for _ in range(2):
            await probe_unanswered(anva)
        await probe.probe_down_apis()
        down_while_unreachable = health.down
        upstream.down = False
        with capture_logs() as logs:
            await probe.probe_down_apis()

    assert down_while_unreachable == ["ANVA"]
    assert health.down == []
    assert upstream.requests == ["/api/organization/organizations/mine"] * 4
    assert {"event": "upstream back", "api": "ANVA", "log_level": "info"} in logs


async def probe_unanswered(anva: AnvaClient) -> None:
    with contextlib.suppress(UpstreamUnavailable):
        await anva.probe()


@pytest.mark.looptime
@pytest.mark.timeout(10)
async def test_while_an_api_is_down_it_is_probed_at_doubling_intervals_until_it_answers() -> None:
    health, upstream = UpstreamHealth(threshold=1), AnvaUpstream()
    async with anva_behind(health, upstream) as anva:
        await probe_unanswered(anva)
        probe = UpstreamProbe(health, {"ANVA": anva.probe}, interval_s=5, max_interval_s=20)
        probe.start()
        await asyncio.sleep(76)
        probes_while_down = len(upstream.requests) - 1
        upstream.down = False
        await asyncio.sleep(60)
        await probe.stop()

    assert probes_while_down == 5, "at 5, 15, 35, 55 and 75 s"
    assert len(upstream.requests) == 1 + 5 + 1
    assert health.down == []


def state_after(error: Exception, *, attempt: int, elapsed_s: float) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    state.outcome_timestamp = state.start_time + elapsed_s
    return state


def test_a_retry_after_is_a_floor_for_the_backoff() -> None:
    wait = backoff_wait(RetrySettings(initial_backoff_s=0.1, max_backoff_s=1.0))

    waited = wait(state_after(RateLimited("429", retry_after_s=7.0), attempt=1, elapsed_s=0))

    assert waited == 7.0


NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


def answered(status: int, retry_after: str) -> httpx.Response:
    return httpx.Response(status, headers={"Retry-After": retry_after})


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [
        ("120", 120.0),
        ("Wed, 02 Dec 2026 12:01:30 GMT", 90.0),  # IMF-fixdate
        ("Wednesday, 02-Dec-26 12:00:10 GMT", 10.0),  # obsolete RFC 850
        ("Wed Dec  2 12:00:05 2026", 5.0),  # obsolete asctime
        ("Wed, 02 Dec 2026 11:59:00 GMT", 0.0),  # past: now
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_an_http_date(
    retry_after: str, seconds: float | None
) -> None:
    assert retry_after_s(answered(429, retry_after), now=lambda: NOW) == seconds


def test_a_503_with_retry_after_waits_at_least_that_long() -> None:
    wait = backoff_wait(RetrySettings(initial_backoff_s=0.1, max_backoff_s=1.0))
    with pytest.raises(UpstreamUnavailable) as raised:
        raise_for_status(answered(503, "30"), api="Elements")

    assert wait(state_after(raised.value, attempt=1, elapsed_s=0)) == 30.0


def test_backoff_grows_but_never_past_the_maximum() -> None:
    wait = backoff_wait(RetrySettings(initial_backoff_s=0.5, max_backoff_s=4.0))

    waits = [
        wait(state_after(UpstreamUnavailable("5xx"), attempt=n, elapsed_s=0)) for n in range(1, 12)
    ]

    assert all(0 <= w <= 4.0 for w in waits)


@pytest.mark.parametrize(
    ("error", "attempt", "elapsed_s", "stops"),
    [
        (UpstreamUnavailable("down"), 50, 100.0, False),
        (UpstreamUnavailable("down"), 2, 601.0, True),
        (RateLimited("429"), 4, 1.0, False),
        (RateLimited("429"), 5, 1.0, True),
        (RateLimited("429"), 2, 121.0, True),
    ],
    ids=[
        "outage-within-max",
        "outage-past-max",
        "429-attempts-left",
        "429-attempts-spent",
        "429-too-long",
    ],
)
def test_outages_are_bounded_by_time_other_transient_errors_by_attempts(
    error: Exception, attempt: int, elapsed_s: float, stops: bool
) -> None:
    stop = should_stop(RetrySettings())

    assert stop(state_after(error, attempt=attempt, elapsed_s=elapsed_s)) is stops


def test_permanent_errors_are_not_what_the_retry_loop_retries() -> None:
    assert not UpstreamRejected("400").retryable
    assert UpstreamUnavailable("503").retryable
