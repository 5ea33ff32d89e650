"""Backfill events take Elements slots only while no live event is in flight, and never the
share of the day's budget kept for live events. On looptime's fake clock (see
test_limiter.py for why the spacing is 0.25 s there)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from datetime import date, timedelta
from functools import partial
from typing import Any, TypeVar

import pytest

from app.clients.limiter import ElementsLimiter
from app.errors import BackfillReserveReached, DailyBudgetExhausted
from app.state.locks import KeyedLocks
from app.ticket import Priority, Ticket
from tests.unit.test_limiter import LIVE, fake_clock

DAY = date(2025, 3, 1)
T = TypeVar("T")


def limiter(**kwargs: object) -> ElementsLimiter:
    options: dict[str, object] = {"rate_per_s": 4, "margin_s": 0.0, "daily_limit": 10_000}
    return ElementsLimiter(**{**options, **kwargs})  # type: ignore[arg-type]


def at(priority: Priority, work: Callable[[Ticket], Coroutine[Any, Any, T]]) -> asyncio.Task[T]:
    """Run `work` in a task of its own on a ticket of `priority`, as the consumer runs each
    message."""
    return asyncio.create_task(work(Ticket(0.0, priority)))


def granted_at(
    gate: ElementsLimiter, log: list[tuple[str, float]], name: str
) -> Callable[[Ticket], Coroutine[Any, Any, None]]:
    async def acquire(ticket: Ticket) -> None:
        await gate.acquire(ticket)
        log.append((name, asyncio.get_running_loop().time()))

    return acquire


@fake_clock
async def test_a_backfill_request_waits_while_a_live_event_is_in_flight() -> None:
    gate = limiter()
    gate.live.started()
    backfill = at("backfill", gate.acquire)

    await asyncio.sleep(30)
    assert not backfill.done()

    gate.live.finished()
    await asyncio.sleep(0)
    assert await asyncio.wait_for(backfill, 1) == 30


@fake_clock
async def test_live_requests_all_go_before_waiting_backfill_requests() -> None:
    gate = limiter()
    log: list[tuple[str, float]] = []
    gate.live.started()
    backfills = [at("backfill", granted_at(gate, log, f"backfill{i}")) for i in range(2)]
    for i in range(3):
        await at("live", granted_at(gate, log, f"live{i}"))
        await asyncio.sleep(1)  # the live event reads ANVA and the portal between requests
    gate.live.finished()
    await asyncio.gather(*backfills)

    assert [name for name, _ in log] == ["live0", "live1", "live2", "backfill0", "backfill1"]
    assert [t for _, t in log] == [0, 1, 2, 3, 3.25]


@fake_clock
async def test_a_backfill_waiting_for_its_turn_gives_way_to_a_live_event_started_meanwhile() -> (
    None
):
    """It queued for the turn while no live event ran; by the time it holds the turn one does."""
    gate = limiter()
    log: list[tuple[str, float]] = []
    await gate.acquire(LIVE)  # an earlier request: the next turn is 0.25 s away
    first = at("live", granted_at(gate, log, "token"))  # holds the turn until 0.25
    await asyncio.sleep(0)
    backfill = at("backfill", granted_at(gate, log, "backfill"))
    await asyncio.sleep(0.1)
    gate.live.started()
    await first
    await at("live", granted_at(gate, log, "live"))
    await asyncio.sleep(5)
    assert not backfill.done()
    gate.live.finished()
    await backfill

    assert log == [("token", 0.25), ("live", 0.5), ("backfill", 5.5)]


@fake_clock
async def test_a_live_event_waiting_for_a_dossier_a_backfill_holds_lets_the_backfill_finish() -> (
    None
):
    """A form names the dossier a backfill is syncing: the form waits for the dossier, the
    backfill must not wait for the form."""
    gate = limiter()
    locks = KeyedLocks()
    holding = asyncio.Event()

    def dossier(ticket: Ticket) -> AbstractAsyncContextManager[None]:
        return locks.hold("100001", waiting=partial(gate.live.stepped_aside, ticket.priority))

    async def backfill(ticket: Ticket) -> None:
        async with dossier(ticket):
            holding.set()
            await asyncio.sleep(1)  # reading ANVA and the portal
            await gate.acquire(ticket)

    async def live_form(ticket: Ticket) -> None:
        gate.live.started()
        try:
            await holding.wait()
            async with dossier(ticket):
                await gate.acquire(ticket)
        finally:
            gate.live.finished()

    await asyncio.wait_for(asyncio.gather(at("backfill", backfill), at("live", live_form)), 10)

    assert gate.live.count == 0
    assert gate.remaining_today == 10_000 - 2


@fake_clock
async def test_backfill_stops_at_the_reserve_while_live_events_take_the_rest() -> None:
    gate = limiter(daily_limit=10, backfill_reserve=0.2, today=lambda: DAY)

    for _ in range(8):
        await at("backfill", gate.acquire)
    with pytest.raises(BackfillReserveReached, match="20% of today's Elements budget"):
        await at("backfill", gate.acquire)
    assert gate.backfill_paused and not gate.exhausted

    await at("live", gate.acquire)
    await at("live", gate.acquire)
    with pytest.raises(DailyBudgetExhausted):
        await at("live", gate.acquire)


@fake_clock
async def test_a_backfill_at_the_reserve_waits_for_the_next_day_while_live_does_not() -> None:
    today = [DAY]
    gate = limiter(daily_limit=10, backfill_reserve=0.5, today=lambda: today[0], budget_poll_s=60)
    for _ in range(5):
        await gate.acquire(LIVE)

    await asyncio.wait_for(at("live", gate.wait_for_budget), 1)
    backfill_waits = at("backfill", gate.wait_for_budget)
    await asyncio.sleep(3600)
    assert not backfill_waits.done()

    today[0] = DAY + timedelta(days=1)
    await asyncio.wait_for(backfill_waits, 61)
    assert await at("backfill", gate.acquire) >= 0
