"""One owner per dossier across replicas: leases and their fence in a real redis-server.

Two `DossierOwners` with a Redis client each stand for two replicas; each test keeps to
a key prefix of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from app.errors import LeaseWanted, OwnershipLost
from app.event_stop import EventStop, HandedOver
from app.retry import exponential_backoff
from app.settings import RetrySettings
from app.state.ownership import DossierOwners
from app.state.redis_leases import RedisLeases
from app.ticket import Ticket

BACKOFF = exponential_backoff(RetrySettings(initial_backoff_s=0.02, max_backoff_s=0.1))

LIVE = Ticket(arrived=0.0)

pytestmark = pytest.mark.timeout(20)

Replica = Callable[..., DossierOwners]


@pytest.fixture
async def replica(redis_url: str) -> AsyncIterator[Replica]:
    prefix = f"test-{uuid.uuid4().hex}"
    made: list[DossierOwners] = []

    def make(ttl_ms: int = 5_000) -> DossierOwners:
        leases = RedisLeases.from_url(redis_url, backoff=BACKOFF, ttl_ms=ttl_ms)
        leases._prefix = prefix
        owners = DossierOwners(leases=leases)
        made.append(owners)
        return owners

    yield make
    for owners in made:
        await owners.close()


async def test_a_dossier_is_owned_by_one_replica_at_a_time(replica: Replica) -> None:
    first, second = replica(), replica()
    held: list[str] = []
    overlaps = 0

    async def sync(owners: DossierOwners, name: str) -> None:
        nonlocal overlaps
        async with owners.hold("100", LIVE):
            held.append(name)
            overlaps += len(held) > 1
            await asyncio.sleep(0.05)
            held.remove(name)

    await asyncio.gather(*(sync(o, n) for _ in range(5) for o, n in ((first, "a"), (second, "b"))))

    assert overlaps == 0


async def test_other_dossiers_are_not_held_up_by_an_owned_one(replica: Replica) -> None:
    first, second = replica(), replica()
    async with first.hold("100", LIVE), asyncio.timeout(1.0), second.hold("101", LIVE):
        pass


async def test_each_record_write_takes_the_next_revision_whoever_owns_the_dossier(
    replica: Replica,
) -> None:
    first, second = replica(), replica()
    async with first.hold("100", LIVE) as owned:
        assert owned.newest_revision == 0
        assert await first.fence("100", 1) == 1
        assert await first.fence("100", 2) == 2
    async with second.hold("100", LIVE) as owned:
        assert owned.newest_revision == 2
        assert await second.fence("100", 1) == 3
        assert await second.fence("100", 10) == 10


async def test_a_replica_whose_lease_ran_out_cannot_write_the_record(replica: Replica) -> None:
    slow, other = replica(ttl_ms=300), replica()
    async with slow.hold("100", LIVE):
        slow._held["100"].released.set()  # the replica stalls: nothing renews its lease
        await asyncio.sleep(0.4)
        async with other.hold("100", LIVE):
            assert await other.fence("100", 1) == 1
            with pytest.raises(OwnershipLost):
                await slow.fence("100", 1)


async def test_a_record_written_outside_an_owned_block_is_refused(replica: Replica) -> None:
    owners = replica()

    with pytest.raises(OwnershipLost):
        await owners.fence("100", 1)


async def test_without_redis_the_process_lock_is_the_owner_and_revisions_pass_through() -> None:
    owners = DossierOwners()
    async with owners.hold("100", LIVE) as owned:
        assert owned.newest_revision == 0
        assert await owners.fence("100", 7) == 7


async def step_boundaries(ticket: Ticket, *, for_s: float) -> None:
    """A sync's step boundaries, one every 20 ms."""
    async with asyncio.timeout(for_s):
        while True:
            ticket.checkpoint()
            await asyncio.sleep(0.02)


async def test_a_sync_whose_lease_was_taken_over_stops_at_its_next_step_boundary(
    replica: Replica,
) -> None:
    """Its renewal finds another token on the dossier (an operator cleared the key, or the
    lease ran out while Redis was away): the next step boundary raises, not the record write."""
    first, second = replica(ttl_ms=300), replica()
    ticket = Ticket(arrived=0.0)
    async with first.hold("100", ticket) as owned:
        with ticket.owning(owned.check):
            ticket.checkpoint()
            await first._leases._redis.delete(first._leases._keys("100")[0])
            async with second.hold("100", LIVE):
                with pytest.raises(OwnershipLost, match="taken over"):
                    await step_boundaries(ticket, for_s=2.0)


async def test_a_lease_redis_no_longer_renews_allows_no_write_it_may_outlast(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis stops answering the renewals: by the local clock the lease holds for its time to
    live, and a write only starts while it holds for half of that more."""
    owners = replica(ttl_ms=600)
    ticket = Ticket(arrived=0.0)
    async with owners.hold("100", ticket) as owned:
        lease = owners._held["100"]

        async def unanswered(**_: object) -> int:
            raise ConnectionError("Redis does not answer")

        monkeypatch.setattr(owners._leases, "_renew", unanswered)
        with ticket.owning(owned.check):
            ticket.before_write()
            await asyncio.sleep(lease.valid_until - asyncio.get_running_loop().time() - 0.2)

            ticket.checkpoint()
            with pytest.raises(OwnershipLost, match="long enough"):
                ticket.before_write()
            await asyncio.sleep(0.25)
            with pytest.raises(OwnershipLost):
                ticket.checkpoint()


async def test_a_renewed_lease_allows_writes_for_longer_than_its_time_to_live(
    replica: Replica,
) -> None:
    owners = replica(ttl_ms=1500)
    ticket = Ticket(arrived=0.0)
    async with owners.hold("100", ticket) as owned:
        with ticket.owning(owned.check):
            for _ in range(10):
                ticket.before_write()
                await asyncio.sleep(0.2)


async def stops_at_its_handover(owners: DossierOwners, *, after_s: float) -> None:
    """An event waiting `after_s` for dossier 100 through `owners` stops at its handover at
    once (within a second)."""
    handover = EventStop("customer-events[0]")
    waiting = asyncio.create_task(
        owners.hold("100", Ticket(arrived=0.0, handover=handover)).__aenter__()
    )
    await asyncio.sleep(after_s)
    handover.request()

    with pytest.raises(HandedOver):
        await asyncio.wait_for(waiting, 1.0)


async def a_waiter_stops_at_its_handover(holder: DossierOwners, waiter: DossierOwners) -> None:
    """`waiter` waits for the dossier `holder` holds; its handover ends the wait at once, and
    the dossier is free for whoever comes next once `holder` lets it go."""
    async with holder.hold("100", LIVE):
        await stops_at_its_handover(waiter, after_s=0.1)
    async with asyncio.timeout(1.0), waiter.hold("100", LIVE):
        pass


async def test_an_event_waiting_for_a_dossier_held_here_stops_at_its_handover() -> None:
    owners = DossierOwners()

    await a_waiter_stops_at_its_handover(owners, owners)


async def test_an_event_waiting_for_a_lease_another_replica_holds_stops_at_its_handover(
    replica: Replica,
) -> None:
    await a_waiter_stops_at_its_handover(replica(), replica())


async def test_a_lease_released_while_it_is_being_renewed_is_released_at_once(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release came as a renewal was in flight: a cancelled renewal ran on (redis-py
    completes a cancelled command), and the release waited for it for ever, holding the
    event whose writes were all made without a result."""
    owners = replica(ttl_ms=300)
    assert owners._leases is not None
    renewal_sent = asyncio.Event()
    renew = owners._leases._renew

    async def renewal(**arguments: object) -> object:
        renewal_sent.set()
        return await renew(**arguments)

    monkeypatch.setattr(owners._leases, "_renew", renewal)
    holding = owners.hold("100", LIVE)
    await holding.__aenter__()
    await renewal_sent.wait()

    async with asyncio.timeout(2.0):
        await holding.__aexit__(None, None, None)


async def test_a_backfill_steps_aside_for_a_live_event_waiting_on_another_replica(
    replica: Replica,
) -> None:
    """Priority was per process: a live event waited for another replica's backfill as long
    as that replica had live work of its own. Now the backfill holding the dossier stops at
    its next step boundary, and the live event gets the dossier."""
    first, second = replica(), replica()
    backfill = Ticket(arrived=0.0, priority="backfill")

    async def live_event() -> None:
        async with second.hold("100", LIVE):
            pass

    async with first.hold("100", backfill) as owned:
        with backfill.owning(owned.check):
            waiting = asyncio.create_task(live_event())
            with pytest.raises(LeaseWanted, match="live event waits for dossier 100"):
                await step_boundaries(backfill, for_s=2.0)
    await asyncio.wait_for(waiting, 2.0)


async def test_a_backfill_does_not_take_a_dossier_a_live_event_waits_for(
    replica: Replica,
) -> None:
    """The live event tries once a second, the backfill every 10 ms: once the holder lets
    the dossier go, the backfill asks first, yet the live event gets it."""
    holder, live_replica, backfill_replica = (replica()._leases for _ in range(3))
    assert holder is not None and live_replica is not None and backfill_replica is not None
    order: list[str] = []

    async def take(leases: RedisLeases, name: str, every_s: float) -> None:
        lease = await leases.acquire(
            "100",
            pause=lambda _: asyncio.sleep(every_s),
            priority="backfill" if name == "backfill" else "live",
        )
        order.append(name)
        await asyncio.sleep(0.05)
        await leases.release(lease)

    held = await holder.acquire("100")
    live = asyncio.create_task(take(live_replica, "live", 1.0))
    await asyncio.sleep(0.1)
    backfill = asyncio.create_task(take(backfill_replica, "backfill", 0.01))
    await asyncio.sleep(0.1)
    await holder.release(held)
    await asyncio.wait_for(asyncio.gather(backfill, live), 5.0)

    assert order == ["live", "backfill"]


async def test_a_live_event_holding_a_dossier_does_not_step_aside(replica: Replica) -> None:
    first, second = replica(), replica()
    ticket = Ticket(arrived=0.0)

    async def other_live_event() -> None:
        async with second.hold("100", LIVE):
            pass

    async with first.hold("100", ticket) as owned:
        with ticket.owning(owned.check):
            waiting = asyncio.create_task(other_live_event())
            with contextlib.suppress(TimeoutError):
                await step_boundaries(ticket, for_s=0.6)
            assert not waiting.done()
    await asyncio.wait_for(waiting, 2.0)


async def test_an_event_waiting_for_a_lease_while_redis_does_not_answer_stops_at_its_handover(
    replica: Replica, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tries for a lease Redis did not answer were retried with a backoff no handover
    could end: the event held its partition for as long as Redis was away."""
    owners = replica()
    assert owners._leases is not None

    async def unanswered(**_: object) -> int:
        raise ConnectionError("Redis does not answer")

    monkeypatch.setattr(owners._leases, "_acquire", unanswered)

    await stops_at_its_handover(owners, after_s=0.2)
