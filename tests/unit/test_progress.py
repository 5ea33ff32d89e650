"""A stuck event is seen: the age of the oldest event in flight is a gauge, and an event that
makes no progress for `LOG_STALL_AFTER_S` is logged once per stall with its step and what it
waits for (a limiter slot, a dossier another event holds, a retry's backoff). On looptime's
fake clock (see test_limiter.py), but for the consumer's, which runs on the real one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from app.clients.limiter import ElementsLimiter
from app.errors import RateLimited
from app.metrics import Metrics
from app.progress import EventsInFlight, StallWatch
from app.retry import exponential_backoff, retrying
from app.settings import RetrySettings
from app.state.ownership import DossierOwners
from app.state.redis_leases import RedisLeases
from app.ticket import Priority, Ticket
from tests.unit.test_consumer_handover import P, message, settings, started
from tests.unit.test_limiter import fake_clock

STALL_AFTER_S = 60.0
STALLED = "event makes no progress"
OLDEST = "elements_sync_oldest_event_in_flight_seconds"


@asynccontextmanager
async def watched(
    after_s: float = STALL_AFTER_S,
) -> AsyncIterator[tuple[EventsInFlight, list[dict[str, Any]]]]:
    """Events in flight, watched for stalls in the block, and the lines logged there.
    Started in the test, not in a fixture: looptime's clock is the test's own."""
    events = EventsInFlight()
    watch = StallWatch(events, after_s=after_s)
    with capture_logs() as logs:
        watch.start()
        try:
            yield events, logs
        finally:
            await watch.stop()


def stalls(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == STALLED]


def in_flight(
    events: EventsInFlight,
    message: str,
    work: Callable[[Ticket], Coroutine[Any, Any, object]],
    *,
    priority: Priority = "live",
    event_id: str | None = None,
) -> asyncio.Task[object]:
    """`work` on the ticket of an event in flight, in a task of its own as the consumer runs
    each message, with the event's id in its log context as the service binds it."""

    async def run() -> object:
        now = asyncio.get_running_loop().time()
        with (
            events.tracked(message, started=now) as tracked,
            structlog.contextvars.bound_contextvars(event_id=event_id),
        ):
            return await work(Ticket(now, priority, in_flight=tracked))

    return asyncio.create_task(run())


def oldest(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value(OLDEST)


@fake_clock
async def test_the_gauge_is_the_age_of_the_oldest_event_in_flight_and_0_when_none() -> None:
    metrics, events = Metrics(), EventsInFlight()
    metrics.track_in_flight(events.oldest_age_s)
    assert oldest(metrics) == 0

    first = in_flight(events, "customer-events[0]@1", lambda ticket: asyncio.sleep(30))
    await asyncio.sleep(10)
    second = in_flight(events, "customer-events[1]@1", lambda ticket: asyncio.sleep(5))
    await asyncio.sleep(4)
    assert oldest(metrics) == 14

    await asyncio.gather(first, second)
    assert oldest(metrics) == 0


@fake_clock
async def test_an_event_waiting_for_a_slot_is_logged_once_with_what_it_waits_for() -> None:
    gate = ElementsLimiter(rate_per_s=4, margin_s=0.0, daily_limit=10_000)
    gate.live.started()  # a live event in flight: the backfill waits for its slot
    async with watched() as (events, logs):
        backfill = in_flight(
            events,
            "customer-backfill[0]@7",
            gate.acquire,
            priority="backfill",
            event_id="evt-7",
        )
        await asyncio.sleep(STALL_AFTER_S + 100)
        assert not backfill.done()

    [stall] = stalls(logs)  # one line per stall, not one per look
    assert stall["log_level"] == "warning"
    assert stall["event_id"] == "evt-7"
    assert stall["message"] == "customer-backfill[0]@7"
    assert stall["waiting_for"] == "an Elements rate slot while no live event is in flight"
    assert STALL_AFTER_S <= stall["no_progress_s"] < STALL_AFTER_S + 10
    gate.live.finished()
    await backfill


@fake_clock
async def test_progress_ends_a_stall_and_the_next_stall_is_logged_anew() -> None:
    gate = ElementsLimiter(rate_per_s=4, margin_s=0.0, daily_limit=10_000)

    async def two_slots(ticket: Ticket) -> None:
        ticket.progress("writing to Elements")
        await gate.acquire(ticket)
        gate.live.started()  # a live event again: the next slot waits for it
        await gate.acquire(ticket)

    gate.live.started()
    async with watched() as (events, logs):
        backfill = in_flight(events, "customer-backfill[0]@8", two_slots, priority="backfill")
        await asyncio.sleep(STALL_AFTER_S + 30)
        gate.live.finished()
        await asyncio.sleep(STALL_AFTER_S - 10)
        assert len(stalls(logs)) == 1, "the slot came: no stall since"
        await asyncio.sleep(30)

    assert [stall["step"] for stall in stalls(logs)] == ["writing to Elements"] * 2
    gate.live.finished()
    await backfill


@fake_clock
async def test_an_event_waiting_for_a_dossier_names_the_event_that_holds_it() -> None:
    owners = DossierOwners()
    holding = asyncio.Event()
    release = asyncio.Event()

    async def holder(ticket: Ticket) -> None:
        async with owners.hold("100234", ticket):
            holding.set()
            await release.wait()

    async def waiter(ticket: Ticket) -> None:
        ticket.progress("owning the dossier")
        async with owners.hold("100234", ticket):
            pass

    async with watched() as (events, logs):
        held = in_flight(events, "form-submissions[2]@41", holder)
        await holding.wait()
        waiting = in_flight(events, "customer-events[0]@42", waiter)
        await asyncio.sleep(STALL_AFTER_S + 10)
        release.set()
        await asyncio.gather(held, waiting)

    [stall] = [line for line in stalls(logs) if line["message"] == "customer-events[0]@42"]
    assert stall["step"] == "owning the dossier"
    assert stall["waiting_for"] == "dossier 100234, held here by form-submissions[2]@41"


@pytest.mark.timeout(20)
async def test_an_event_waiting_for_a_lease_another_replica_holds_names_the_holder(
    redis_url: str,
) -> None:
    """On the real clock: the lease lives in a real redis-server. The lease's token names
    the replica and the work that holds it, so the stall's line can say who to look at."""
    backoff = exponential_backoff(RetrySettings(initial_backoff_s=0.02, max_backoff_s=0.1))
    here, there = (
        DossierOwners(leases=RedisLeases.from_url(redis_url, backoff=backoff), replica=name)
        for name in ("elements-sync-a", "elements-sync-b")
    )
    number = f"lease-{uuid.uuid4().hex}"

    async def waiter(ticket: Ticket) -> None:
        async with here.hold(number, ticket):
            pass

    try:
        async with watched(after_s=0.2) as (events, logs):
            async with there.hold(number, Ticket(0.0)):
                waiting = in_flight(events, "customer-events[0]@9", waiter)
                await asyncio.sleep(0.6)
            await waiting
    finally:
        await here.close()
        await there.close()

    [stall] = stalls(logs)
    assert stall["waiting_for"] == (
        f"the lease on dossier {number} in Redis, held by work outside an event on elements-sync-b"
    )


@fake_clock
async def test_an_event_in_a_retry_backoff_names_the_backoff_and_the_error_before_it() -> None:
    attempts = 0

    async def rate_limited_once(ticket: Ticket) -> None:
        nonlocal attempts
        async for attempt in retrying(RetrySettings(initial_backoff_s=0.1), ticket):
            with attempt:
                attempts += 1
                if attempts == 1:
                    raise RateLimited("Elements answered 429", retry_after_s=90)

    async with watched() as (events, logs):
        await in_flight(events, "contract-events[3]@5", rate_limited_once)

    [stall] = stalls(logs)
    assert stall["waiting_for"] == "a retry backoff of 90.0 s after rate_limited"
    assert attempts == 2


async def test_the_consumer_tracks_each_event_it_processes_until_it_ends() -> None:
    running = await started(settings())
    metrics = running.consumer._metrics
    await running.take(message(P, 0, "waits"))
    await running.until_handled(0)
    await asyncio.sleep(0.2)

    assert (oldest(metrics) or 0) >= 0.2

    await running.consumer.drain()
    assert oldest(metrics) == 0
