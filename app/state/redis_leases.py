"""Per-dossier owner leases in the Redis every replica shares (see `app.state.ownership`).

Three keys per dossier, in one hash slot (`{dossier/<number>}`) so the scripts also run on
a Redis Cluster: the lease (the owner's token, with a time to live), the newest revision
of the dossier's record that an owner confirmed, and a mark that a live event waits for
the lease. The lease is taken with `SET NX PX`, renewed by its holder every third of its
time to live, and released by compare-and-delete, like redis-py's `Lock`; `confirm` checks
the token and moves the revision in one script, which is what makes the lease a fence.

Live events come before a backfill on every replica, not only on the one that runs them: a
live event that finds the lease held marks it wanted (for `WANTED_TTL_MS`, renewed by each
try); a backfill does not take a wanted lease, and a backfill that holds one gives it up at
its next step boundary (`LeaseWanted`) and tries again after the live event.

Redis unreachable: a lease cannot be had, so no sync starts (the limiter, on the same
Redis, pauses intake meanwhile); each failure is counted (`on_error`) and the call is
tried again with the service's backoff. A held lease is valid by the local clock only until
its time to live, counted from before the last request that took or renewed it: a sync whose
renewals fail stops at its next step boundary, and writes to Elements only while its lease
holds for half its time to live more (15 s: one Elements request at its default timeout).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from tenacity.wait import wait_base

from app.clients.redis_slots import REDIS_UNREACHABLE
from app.errors import LeaseWanted, OwnershipLost
from app.retry import retrying_on
from app.ticket import Priority

log = structlog.get_logger(__name__)

KEY_PREFIX = "elements-sync"
LEASE_TTL_MS = 30_000
ACQUIRE_POLL_S = (0.02, 0.5)
"""The first and the longest pause between two tries for a lease another replica holds."""
WANTED_TTL_MS = 2_000
"""How long a live event's try marks the lease wanted: longer than its longest pause."""
WANTED_POLL_S = 0.25
"""How often a backfill that holds a lease looks whether a live event wants it."""

ACQUIRE_SCRIPT = """
-- KEYS[1] the lease, KEYS[2] the newest confirmed revision, KEYS[3] wanted by a live event;
-- ARGV token, time to live (ms), priority, how long a live try marks the lease wanted (ms)
local live = ARGV[3] == 'live'
-- answers {1, the newest confirmed revision} when taken, else {0, who holds it}
if not live and redis.call('EXISTS', KEYS[3]) == 1 then
  return {0, redis.call('GET', KEYS[1]) or 'nobody; a live event waits for it'}
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if live then
    redis.call('DEL', KEYS[3])
  end
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
if live then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
end
return {0, redis.call('GET', KEYS[1]) or 'nobody'}
"""
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
CONFIRM_SCRIPT = """
-- ARGV token, the revision the owner would write; answers the revision to write, -1: not owner
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local revision = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, tonumber(ARGV[2]))
redis.call('SET', KEYS[2], revision)
return revision
"""


@dataclass
class Lease:
    dossier_number: str
    token: str
    revision: int
    """The newest revision confirmed before this lease was taken."""
    valid_until: float
    """Event-loop time until which Redis keeps it at the least: its time to live, counted
    from before the request that took or renewed it was sent."""
    write_margin_s: float
    lost: bool = False
    """Redis answered a renewal: another token holds the dossier now."""
    wanted: bool = False
    """A backfill's lease a live event waits for (on any replica)."""
    renewing: asyncio.Task[None] | None = field(default=None, repr=False)
    watching: asyncio.Task[None] | None = field(default=None, repr=False)
    released: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    """Set by `release`: the renewals end, rather than being cancelled — redis-py completes a
    command whose task is cancelled and carries on, so a cancelled renewal loop renewed on
    and its release waited for it for ever (the event whose writes were all made, held
    without a result)."""

    def check(self, write: bool) -> None:
        """Raise `OwnershipLost` unless the lease is known valid by the local clock; before
        a write, for `write_margin_s` more, so that the write ends while it holds."""
        if self.wanted:
            raise LeaseWanted(
                f"a live event waits for dossier {self.dossier_number}: this backfill gives "
                "it up and tries again after it"
            )
        margin_s = self.write_margin_s if write else 0.0
        if self.lost or asyncio.get_running_loop().time() + margin_s >= self.valid_until:
            raise OwnershipLost(
                f"this replica's lease on dossier {self.dossier_number} "
                + ("was taken over" if self.lost else "is not known to hold long enough")
                + "; another replica may own it now"
            )


def _holder_in(token: bytes | str) -> str:
    """Who holds a lease, from its token (the holder's name, then a random part)."""
    text = token.decode() if isinstance(token, bytes) else token
    return text.rsplit(" ", 1)[0] if " " in text else text


async def _set_within(event: asyncio.Event, seconds: float) -> bool:
    """Whether `event` is set within `seconds`."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


class RedisLeases:
    def __init__(
        self,
        redis: Redis,
        *,
        backoff: wait_base,
        ttl_ms: int = LEASE_TTL_MS,
        key_prefix: str = KEY_PREFIX,
        on_error: Callable[[str], None] = lambda operation: None,
    ) -> None:
        self._redis = redis
        self._backoff = backoff
        self._ttl_ms = ttl_ms
        self._prefix = key_prefix
        self._on_error = on_error
        self._acquire = redis.register_script(ACQUIRE_SCRIPT)
        self._renew = redis.register_script(RENEW_SCRIPT)
        self._release = redis.register_script(RELEASE_SCRIPT)
        self._confirm = redis.register_script(CONFIRM_SCRIPT)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        backoff: wait_base,
        ttl_ms: int = LEASE_TTL_MS,
        on_error: Callable[[str], None] = lambda operation: None,
    ) -> Self:
        redis = Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 1)
        )
        return cls(redis, backoff=backoff, ttl_ms=ttl_ms, on_error=on_error)

    def _keys(self, dossier_number: str) -> list[str]:
        slot = f"{self._prefix}:{{dossier/{dossier_number}}}"
        return [f"{slot}:lease", f"{slot}:revision", f"{slot}:wanted"]

    async def _answered(
        self,
        operation: str,
        script: Any,
        keys: list[str],
        args: list[Any],
        *,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> Any:
        """The script's answer, asked again with the backoff while Redis does not answer; the
        waits between two tries are `pause` (an event's handover ends them)."""

        def unanswered(error: BaseException, _: int) -> None:
            self._on_error(operation)
            log.warning(
                "the lease Redis does not answer; retrying", operation=operation, error=repr(error)
            )

        async for attempt in retrying_on(
            REDIS_UNREACHABLE, wait=self._backoff, on_retry=unanswered, sleep=pause
        ):
            with attempt:
                return await script(keys=keys, args=args)
        raise AssertionError("unreachable")  # pragma: no cover

    async def acquire(
        self,
        dossier_number: str,
        *,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
        priority: Priority = "live",
        holder: str = "",
        held_by: Callable[[str], None] = lambda holder: None,
    ) -> Lease:
        """Wait until this replica holds the dossier's lease (another holder's lease ends when
        it releases it, or at the latest after its time to live; a backfill's, at its next
        step boundary once a live event waits). The waits between two tries are `pause`,
        which the waiting event's handover ends (`Ticket.pause`); a try itself runs to its
        answer, so a lease Redis gave is never left behind unheld. `holder` names this replica
        and event in the lease, and `held_by` is told who else holds it while this waits."""
        token = f"{holder} {uuid.uuid4().hex}".lstrip()
        poll_s = ACQUIRE_POLL_S[0]
        keys = self._keys(dossier_number)
        loop = asyncio.get_running_loop()
        arguments = [token, self._ttl_ms, priority, WANTED_TTL_MS]
        while True:
            asked_at = loop.time()
            taken, answer = await self._answered(
                "lease", self._acquire, keys, arguments, pause=pause
            )
            if taken:
                revision = int(answer)
                break
            held_by(_holder_in(answer))
            await pause(poll_s)
            poll_s = min(poll_s * 2, ACQUIRE_POLL_S[1])
        lease = Lease(
            dossier_number,
            token,
            revision,
            valid_until=asked_at + self._ttl_ms / 1000,
            write_margin_s=self._ttl_ms / 2000,
        )
        lease.renewing = asyncio.create_task(self._keep(lease))
        if priority == "backfill":
            lease.watching = asyncio.create_task(self._watch_for_live(lease))
        return lease

    async def _watch_for_live(self, lease: Lease) -> None:
        """Mark a backfill's lease wanted once a live event waits for it; a look Redis does
        not answer is simply made again."""
        wanted = self._keys(lease.dossier_number)[2]
        while not await _set_within(lease.released, WANTED_POLL_S):
            try:
                if await self._redis.exists(wanted):
                    lease.wanted = True
                    log.info(
                        "a live event waits for this backfill's dossier; it steps aside",
                        dossier_number=lease.dossier_number,
                    )
                    return
            except REDIS_UNREACHABLE:
                continue

    async def _keep(self, lease: Lease) -> None:
        """Renew the lease every third of its time to live while it is held. A renewal Redis
        refuses marks the lease lost; one it does not answer leaves the lease to run out by
        the local clock: either way the holder's next step boundary stops its sync."""
        keys = self._keys(lease.dossier_number)
        loop = asyncio.get_running_loop()
        while not await _set_within(lease.released, self._ttl_ms / 3000):
            asked_at = loop.time()
            try:
                renewed = await self._renew(keys=keys, args=[lease.token, self._ttl_ms])
            except REDIS_UNREACHABLE:
                self._on_error("renew")
                log.warning(
                    "dossier lease not renewed: Redis does not answer",
                    dossier_number=lease.dossier_number,
                )
                continue
            if not renewed:
                lease.lost = True
                log.warning("dossier lease lost", dossier_number=lease.dossier_number)
                return
            lease.valid_until = asked_at + self._ttl_ms / 1000

    async def confirm(self, lease: Lease, revision: int) -> int:
        """The revision to write the record with, if `lease` still holds the dossier."""
        keys = self._keys(lease.dossier_number)
        confirmed = int(
            await self._answered("confirm", self._confirm, keys, [lease.token, revision])
        )
        if confirmed < 0:
            raise OwnershipLost(
                f"this replica's lease on dossier {lease.dossier_number} ran out; "
                "another replica may own it now"
            )
        return confirmed

    async def release(self, lease: Lease) -> None:
        """Best effort: a lease not released ends after its time to live."""
        lease.released.set()
        await asyncio.gather(
            *(task for task in (lease.renewing, lease.watching) if task is not None),
            return_exceptions=True,
        )
        try:
            await self._release(keys=self._keys(lease.dossier_number), args=[lease.token])
        except REDIS_UNREACHABLE:
            self._on_error("release")

    async def close(self) -> None:
        await self._redis.aclose()
