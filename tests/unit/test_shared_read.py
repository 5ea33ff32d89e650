"""SharedRead: concurrent events share one upstream read, never one older than themselves."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
import pytest
from pydantic import SecretStr

from app.clients.anva import AnvaClient
from app.clients.shared_read import SharedRead
from app.sandbox.simulators.anva import AnvaSimulator


@dataclass
class Upstream:
    """A fetch that each caller can hold open: `release()` lets the reads in flight answer."""

    now: float = 0.0
    arrived: float = 0.0
    started: list[float] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    fail: bool = False

    async def fetch(self) -> int:
        self.started.append(self.now)
        number = len(self.started)
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("upstream broke")
        return number

    def shared(self, *, reuse_finished: bool = True) -> SharedRead[int]:
        return SharedRead(self.fetch, clock=lambda: self.now, reuse_finished=reuse_finished)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_concurrent_callers_join_the_read_in_flight() -> None:
    upstream = Upstream()
    shared = upstream.shared()

    waiting = [asyncio.create_task(shared.get(upstream.arrived)) for _ in range(10)]
    await settle()
    upstream.gate.set()

    assert await asyncio.gather(*waiting) == [1] * 10
    assert shared.reads == 1


async def test_without_reuse_of_finished_reads_only_a_read_in_flight_is_joined() -> None:
    upstream = Upstream()
    shared = upstream.shared(reuse_finished=False)
    upstream.gate.set()
    first = await shared.get(upstream.arrived)

    joined = await asyncio.gather(shared.get(upstream.arrived), shared.get(upstream.arrived))

    assert (first, joined) == (1, [2, 2]), "the finished read is read again, then shared"
    assert shared.reads == 2


def test_reads_that_are_not_kept_cannot_be_spaced_from_the_last() -> None:
    with pytest.raises(ValueError, match="min_interval_s"):
        SharedRead(Upstream().fetch, min_interval_s=1.0, reuse_finished=False)


async def test_an_event_that_arrived_after_a_read_started_gets_a_later_read() -> None:
    upstream = Upstream()
    shared = upstream.shared()
    early = asyncio.create_task(shared.get(upstream.arrived))
    await settle()

    upstream.now = upstream.arrived = 5.0
    late = asyncio.create_task(shared.get(upstream.arrived))
    await settle()
    upstream.gate.set()

    assert (await early, await late) == (1, 2)
    assert upstream.started == [0.0, 5.0]


async def test_arrivals_during_a_read_share_the_next_which_starts_when_it_ends() -> None:
    upstream = Upstream()
    shared = upstream.shared()
    first = asyncio.create_task(shared.get(upstream.arrived))
    await settle()
    waiting = []
    for arrival in (1.0, 2.0, 3.0):
        upstream.now = upstream.arrived = arrival
        waiting.append(asyncio.create_task(shared.get(upstream.arrived)))
        await settle()

    upstream.now = 4.0
    upstream.gate.set()

    assert await first == 1
    assert await asyncio.gather(*waiting) == [2, 2, 2]
    assert upstream.started == [0.0, 4.0]


async def test_a_later_arrival_joins_the_newer_read() -> None:
    upstream = Upstream()
    shared = upstream.shared()
    first = asyncio.create_task(shared.get(upstream.arrived))
    await settle()
    upstream.now = upstream.arrived = 5.0
    second = asyncio.create_task(shared.get(upstream.arrived))
    await settle()
    upstream.now = 6.0
    third = asyncio.create_task(shared.get(upstream.arrived))
    await settle()
    upstream.gate.set()

    assert await asyncio.gather(first, second, third) == [1, 2, 2]


async def test_a_completed_read_is_reused_only_by_events_that_arrived_before_it_started() -> None:
    upstream = Upstream()
    upstream.gate.set()
    shared = upstream.shared()
    upstream.now = 3.0
    assert await shared.get(upstream.arrived) == 1

    upstream.now, upstream.arrived = 9.0, 2.0
    reused = await shared.get(upstream.arrived)
    upstream.arrived = 4.0
    fresh = await shared.get(upstream.arrived)

    assert (reused, fresh) == (1, 2)


async def test_a_failed_read_fails_its_waiters_and_is_not_reused() -> None:
    upstream = Upstream(fail=True)
    shared = upstream.shared()
    waiting = [asyncio.create_task(shared.get(upstream.arrived)) for _ in range(2)]
    await settle()
    upstream.gate.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)

    upstream.fail = False

    assert [type(o) for o in outcomes] == [RuntimeError, RuntimeError]
    assert await shared.get(upstream.arrived) == 2


async def test_a_cancelled_caller_leaves_the_read_to_the_others() -> None:
    upstream = Upstream()
    shared = upstream.shared()
    leaving = asyncio.create_task(shared.get(upstream.arrived))
    staying = asyncio.create_task(shared.get(upstream.arrived))
    await settle()

    leaving.cancel()
    await settle()
    upstream.gate.set()

    assert await staying == 1
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_concurrent_events_share_one_account_listing_and_find_their_own_account() -> None:
    anva = AnvaSimulator(token="t")
    for index in range(30):
        anva.add_account(
            account_id=index,
            first_name="Jan",
            middle_name=None,
            last_name=f"Klant{index}",
            email=None,
            dossiers={"301": str(1000 + 2 * index), "302": str(1001 + 2 * index)},
        )

    async def event(number: str) -> str | None:
        account = await client.account_for_dossier(number, fresh_after=0.0)
        return None if account is None else account.lastName

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=anva.app), base_url="http://anva/api"
    ) as http:
        client = AnvaClient(http, SecretStr("t"))
        names = await asyncio.gather(*(event(str(1000 + n)) for n in range(60)), event("999"))

    assert names == [f"Klant{n // 2}" for n in range(60)] + [None]
    assert [r.path for r in anva.requests] == ["/api/account/mine"]
    assert client.account_listings == 1


async def test_a_next_read_starts_no_sooner_than_the_minimum_interval_after_the_last() -> None:
    upstream = Upstream()
    upstream.gate.set()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        upstream.now += seconds

    shared = SharedRead(
        upstream.fetch,
        clock=lambda: upstream.now,
        min_interval_s=0.2,
        sleep=sleep,
    )
    assert await shared.get(upstream.arrived) == 1
    upstream.now = upstream.arrived = 0.05

    later = [asyncio.create_task(shared.get(upstream.arrived)) for _ in range(5)]

    assert await asyncio.gather(*later) == [2] * 5
    assert slept == [pytest.approx(0.15)]
    assert upstream.started == [0.0, pytest.approx(0.2)]
