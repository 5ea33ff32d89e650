"""Replicas share one spacing and one day's count through a real redis-server, on Redis' clock.

Two `ElementsLimiter`s with a Redis client each stand for two replicas. The spacing is
checked on the times Redis granted at (`last_grant_us`), so no process's clock matters.
These run on the real clock (Redis' `TIME` cannot be faked): rate 50 keeps the spacing at
21 ms and each test under a second or two.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import date, datetime, timedelta

import pytest
from redis.asyncio import Redis

from app.application import Runtime, intake_pause
from app.clients.limiter import AMSTERDAM, ElementsLimiter
from app.clients.redis_slots import LIVE_HOLD_MS, SEND_LEASE_MS, RedisSlots, amsterdam_day
from app.errors import BackfillReserveReached, DailyBudgetExhausted
from app.retry import exponential_backoff
from app.sandbox.redis_server import RedisServer
from app.sandbox.worker_process import free_port
from app.settings import RetrySettings, load_settings
from app.ticket import Ticket
from tests.unit.test_limiter import LIVE

RATE = 50
SPACING_US = 21_000  # (1 + 0.05) / 50 s
BACKOFF = exponential_backoff(RetrySettings(initial_backoff_s=0.02, max_backoff_s=0.1))

pytestmark = pytest.mark.timeout(20)

Replica = Callable[..., Awaitable[ElementsLimiter]]


@pytest.fixture
async def replica(redis_url: str) -> AsyncIterator[Replica]:
    """Makes limiters that share this test's keys in Redis, each with a client of its own."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:{{limiter}}"
    async with AsyncExitStack() as stack:

        async def make(
            *,
            daily_limit: int = 10_000,
            url: str = redis_url,
            on_error: Callable[[str], None] = lambda operation: None,
            **options: object,
        ) -> ElementsLimiter:
            slots = RedisSlots.from_url(
                url,
                rate_per_s=RATE,
                daily_limit=daily_limit,
                margin_s=0.05,
                backoff=BACKOFF,
                key_prefix=prefix,
                on_error=on_error,
            )
            stack.push_async_callback(slots.close)
            return ElementsLimiter(
                rate_per_s=RATE,
                daily_limit=daily_limit,
                slots=slots,
                **options,  # type: ignore[arg-type]
            )

        yield make


def grant_time_us(limiter: ElementsLimiter) -> int:
    assert isinstance(limiter.slots, RedisSlots)
    assert limiter.slots.last_grant_us is not None
    return limiter.slots.last_grant_us


async def grants(limiter: ElementsLimiter, n: int, ticket: Ticket = LIVE) -> list[int]:
    """Redis' times of `n` grants in a row of this replica, each request sent at once."""
    times = []
    for _ in range(n):
        await limiter.acquire(ticket)
        await limiter.sent()
        times.append(grant_time_us(limiter))
    return times


def gaps(times: list[int]) -> list[int]:
    ordered = sorted(times)
    return [later - earlier for earlier, later in itertools.pairwise(ordered)]


async def refreshed(limiter: ElementsLimiter) -> ElementsLimiter:
    assert isinstance(limiter.slots, RedisSlots)
    await limiter.slots.refresh()
    return limiter


async def test_two_replicas_grants_are_a_spacing_apart_by_redis_time(replica: Replica) -> None:
    first, second = await replica(), await replica()

    times = await asyncio.gather(grants(first, 15), grants(second, 15))

    spacings = gaps(times[0] + times[1])
    assert min(spacings) >= SPACING_US
    assert sum(spacings) / len(spacings) < 2 * SPACING_US, "the replicas left slots unused"


async def test_no_replica_is_granted_before_the_last_granted_request_went_out(
    replica: Replica,
) -> None:
    first, second = await replica(), await replica()

    await first.acquire(LIVE)
    waiting = asyncio.create_task(second.acquire(LIVE))
    await asyncio.sleep(0.15)  # the first request waits for its connection: 7 spacings
    assert not waiting.done()
    await first.sent()
    await waiting

    assert grant_time_us(second) - grant_time_us(first) >= 150_000 + SPACING_US


async def test_a_granted_request_that_never_goes_out_holds_the_next_grant_only_for_its_lease(
    replica: Replica,
) -> None:
    first, second = await replica(), await replica()

    await first.acquire(LIVE)  # and its connection fails: no sent()
    await second.acquire(LIVE)

    waited_us = grant_time_us(second) - grant_time_us(first)
    assert SEND_LEASE_MS * 1000 <= waited_us < SEND_LEASE_MS * 1000 + 500_000


async def test_the_day_count_is_shared_and_survives_a_new_limiter(replica: Replica) -> None:
    first, second = await replica(daily_limit=5), await replica(daily_limit=5)
    await grants(first, 3)
    await grants(second, 2)

    restarted = await refreshed(await replica(daily_limit=5))

    assert [(await refreshed(gate)).remaining_today for gate in (first, second, restarted)] == [
        0,
        0,
        0,
    ]
    with pytest.raises(DailyBudgetExhausted):
        await restarted.acquire(LIVE)


async def test_a_replica_is_refused_once_another_spent_the_day(replica: Replica) -> None:
    first, second = await replica(daily_limit=3), await replica(daily_limit=3)
    await grants(first, 3)

    with pytest.raises(DailyBudgetExhausted):
        await second.slots.take(ceiling=3)
    assert second.exhausted


async def test_exhaust_closes_the_day_for_every_replica(replica: Replica) -> None:
    first, second = await replica(daily_limit=100), await replica(daily_limit=100)
    await first.acquire(LIVE)

    first.exhaust()

    assert first.exhausted
    async with asyncio.timeout(5):  # the exhaust reaches Redis in the background
        while not (await refreshed(second)).exhausted:  # noqa: ASYNC110 - Redis signals nothing
            await asyncio.sleep(0.01)
    with pytest.raises(DailyBudgetExhausted):
        await second.acquire(LIVE)


async def test_backfill_stops_at_the_reserve_counted_over_all_replicas(replica: Replica) -> None:
    first = await replica(daily_limit=10, backfill_reserve=0.2)
    second = await replica(daily_limit=10, backfill_reserve=0.2)
    await grants(first, 5)

    backfill = Ticket(0.0, "backfill")
    await grants(second, 3, backfill)
    with pytest.raises(BackfillReserveReached):
        await second.acquire(backfill)
    await grants(second, 2)  # live events take the reserve
    assert second.exhausted


async def test_a_replica_whose_clock_is_a_day_behind_counts_on_redis_day(
    replica: Replica, redis_url: str
) -> None:
    gate = await replica()
    assert isinstance(gate.slots, RedisSlots)
    gate.slots._wall_clock = lambda: datetime.now(AMSTERDAM).timestamp() - 86_400

    await gate.acquire(LIVE)

    redis = Redis.from_url(redis_url)
    try:
        seconds, micros = await redis.time()
        today = amsterdam_day(seconds * 1_000_000 + micros)[0]
        prefix = gate.slots._key_prefix
        assert await redis.get(f"{prefix}:day:{today}") == b"1"
        assert await redis.get(f"{prefix}:day:{today - timedelta(days=1)}") is None
    finally:
        await redis.aclose()
    assert gate.remaining_today == 10_000 - 1


async def test_while_redis_is_down_take_waits_and_continues_when_it_is_back(
    replica: Replica,
) -> None:
    errors: list[str] = []
    with RedisServer() as server:
        gate = await replica(url=server.url, on_error=errors.append)
        await gate.acquire(LIVE)
        before = asyncio.get_running_loop().time()

        server.stop()
        waiting = asyncio.create_task(gate.acquire(LIVE))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        assert gate.unavailable

        server.start()
        await asyncio.wait_for(waiting, 5)
        after = asyncio.get_running_loop().time()

    assert not gate.unavailable
    assert errors and set(errors) == {"take"}
    assert after - before >= 0.5


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        (date(2025, 3, 30), 23),  # summer time begins
        (date(2025, 10, 26), 25),  # and ends
        (date(2025, 6, 1), 24),
    ],
)
def test_amsterdam_day_bounds_are_its_local_midnights(day: date, hours: int) -> None:
    midnight = datetime(day.year, day.month, day.day, tzinfo=AMSTERDAM)
    noon_us = int(midnight.timestamp() + 12 * 3600) * 1_000_000

    found, start_us, end_us = amsterdam_day(noon_us)

    assert found == day
    assert start_us == int(midnight.timestamp()) * 1_000_000
    assert end_us - start_us == hours * 3600 * 1_000_000
    assert amsterdam_day(end_us)[0] == day + timedelta(days=1)
    assert amsterdam_day(end_us - 1)[0] == day


@pytest.mark.parametrize(("url", "shared"), [("", False), (None, False), ("redis://x:6379", True)])
def test_the_limiter_is_shared_only_when_a_redis_url_is_set(
    monkeypatch: pytest.MonkeyPatch, contract_environment: None, url: str | None, shared: bool
) -> None:
    if url is not None:
        monkeypatch.setenv("ELEMENTS_LIMITER_REDIS_URL", url)

    settings = load_settings()

    assert (settings.elements.limiter_redis_url is not None) == shared
    assert "redis://" not in repr(settings)


async def test_a_worker_whose_redis_does_not_answer_pauses_intake_and_counts_it(
    monkeypatch: pytest.MonkeyPatch, contract_environment: None
) -> None:
    monkeypatch.setenv("ELEMENTS_LIMITER_REDIS_URL", f"redis://:pw@127.0.0.1:{free_port()}/0")
    runtime = Runtime(load_settings())
    try:
        assert isinstance(runtime.pipeline.limiter.slots, RedisSlots)
        assert (
            intake_pause(runtime.pipeline.limiter, runtime.state, runtime.pipeline.health) is None
        )

        await runtime.pipeline.limiter.slots.refresh()

        assert (
            intake_pause(runtime.pipeline.limiter, runtime.state, runtime.pipeline.health)
            == "limiter_unavailable"
        )
        metrics = runtime.pipeline.metrics.render().decode()
        assert 'elements_sync_limiter_redis_errors_total{operation="refresh"} 1.0' in metrics
    finally:
        await runtime.pipeline.close()


async def test_a_limiter_closed_while_it_hears_the_days_count_closes_at_once(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py completes a command whose task is cancelled: the refresh loop, cancelled as
    its count was asked, went on asking, and the close waited for it for ever."""
    slots = RedisSlots.from_url(
        redis_url,
        rate_per_s=RATE,
        daily_limit=10_000,
        margin_s=0.05,
        backoff=BACKOFF,
        key_prefix=f"test-{uuid.uuid4().hex[:8]}:{{limiter}}",
        refresh_s=0.05,
    )
    asked = asyncio.Event()
    script = slots._script

    async def counted(**arguments: object) -> object:
        asked.set()
        return await script(**arguments)

    monkeypatch.setattr(slots, "_script", counted)
    await slots.start()
    for _ in range(3):
        asked.clear()
        await asked.wait()

    async with asyncio.timeout(2.0):
        await slots.close()


async def test_a_backfill_on_one_replica_gives_way_to_live_requests_of_another(
    replica: Replica,
) -> None:
    """The live-first rule held per process only: with two replicas, the other replica's
    backfill took slots between a live event's requests (bench-backfill --replicas 2: live
    latency max 2.6 s against 0.73 s on one worker)."""
    live, backfilling = await replica(), await replica()
    backfill = Ticket(arrived=0.0, priority="backfill")
    await live.acquire(LIVE)
    await live.sent()
    asked_live = grant_time_us(live)

    await backfilling.acquire(backfill)

    assert grant_time_us(backfilling) - asked_live >= LIVE_HOLD_MS * 1000


async def test_live_requests_of_two_replicas_only_keep_the_spacing(replica: Replica) -> None:
    first, second = await replica(), await replica()
    await first.acquire(LIVE)
    await first.sent()

    await second.acquire(LIVE)

    assert grant_time_us(second) - grant_time_us(first) < LIVE_HOLD_MS * 1000 / 2
