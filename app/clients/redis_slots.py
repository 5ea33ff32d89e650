"""Elements slots shared by every replica through Redis: one spacing, one day's count, one clock.

Each replica spacing its own requests would let two replicas send twice the limit. Here
every grant is decided by one Lua script, atomically in Redis, on Redis' own clock
(`TIME`, read inside the script), so no replica's clock matters:

- the day's count must be below the request's ceiling (the daily limit, or less for a
  backfill), else the answer is "spent";
- Redis' now must have reached the deployment's next allowed send time, else the answer is
  how long to wait, and the client sleeps that long and asks again;
- a backfill request waits while a live request of any replica asked within `LIVE_HOLD_MS`
  (each process waits out its own live work before asking; this keeps the rule across
  replicas: a backfill never delays a live event, whichever replica runs it);
- granted: next = now + spacing, and the day's count goes up by one.

The spacing is today's, `(1 + ELEMENTS_RATE_MARGIN_S) / ELEMENTS_RATE_LIMIT` between any two
requests of the deployment, and it counts from when a request really went out: a grant is
not an arrival, and a replica whose event loop is busy can send a request almost a spacing
after its grant, just as another replica sends the next one on time; the server then sees
two requests together and a rolling second with one too many (seen in the two-replica test
before this rule). So a grant holds a lease (`SEND_LEASE_MS`) until the replica reports
that its request's headers were written (`sent()`, a second round trip, awaited before the
headers go out): only then may the next grant be made, at the earliest a spacing after that
moment (next = max(next, now + spacing)). A granted request that never goes out (no
connection, cancelled) holds the next grant up until its lease ends.

Which day. Elements counts per calendar day in Europe/Amsterdam, and Lua in Redis has no time
zones. Python therefore names the day and passes its bounds in UTC microseconds; the script
counts only when Redis' own `TIME` lies within them and otherwise answers "day" with its
time, from which Python derives the right day and asks again. The day is thus always the
one of Redis' clock, whatever this process's clock says; the second call happens only at
midnight or when the clocks disagree. Each day's count expires two days after its last
request.

Redis unreachable (refused, timed out, read-only after a failover): nothing is granted, so
the limit is never exceeded. `take()` waits with the service's one backoff and asks again
until Redis answers; each failure is logged and counted (`on_error`), and `unavailable`
is true meanwhile so that intake pauses. The count lives only in Redis: a Redis that keeps
no data across its restarts (no RDB or AOF) forgets the day's count with it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, Self, cast

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity.wait import wait_base

from app.clients.limiter import AMSTERDAM, budget_spent, request_spacing_s
from app.retry import retrying_on
from app.ticket import Priority

log = structlog.get_logger(__name__)

KEY_PREFIX = "elements-sync:{limiter}"
"""The braces make both keys one hash slot, so the script also runs on a Redis Cluster."""
DAY_COUNT_TTL_S = 2 * 24 * 3600
SEND_LEASE_MS = 2000
LIVE_HOLD_MS = 1000
"""How long a live request's ask holds every replica's backfill requests back: longer than a
live event's pause between two of its Elements requests (an upstream read), so that a
backfill on another replica does not slip in between them."""
"""How long a grant waits for its request to go out before the next grant may be made."""
NEXT_SEND_SLACK_MS = 1000
"""The next-send key outlives its time by this much; a Redis clock that jumped back
therefore holds grants up for at most this long."""


def raise_if_cancelled() -> None:
    """Raise `CancelledError` in a task cancelled while it awaited Redis: redis-py completes a
    command whose task is cancelled and returns its answer, so a loop that goes on after it
    would never end, and whoever awaits its end (a close, a release) would wait for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


REDIS_UNREACHABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    OSError,
)

SLOT_SCRIPT = """
-- KEYS[1] next allowed send time (microseconds, Redis clock); KEYS[2] the day's count;
-- KEYS[3] the grant whose request has not gone out yet (its token, with a lease);
-- KEYS[4] until when a live request was asked for lately (microseconds, Redis clock)
-- ARGV: operation, day start and end (microseconds, UTC), ceiling, spacing (microseconds),
--       daily limit, how long the next-send key outlives its time (ms), the count's TTL (s),
--       the grant's token, its lease (ms), priority, how long a live ask holds backfills (ms)
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local operation = ARGV[1]
local spacing = tonumber(ARGV[5])
local next_send = tonumber(redis.call('GET', KEYS[1]) or '0')
local function push_next(at)
  redis.call('SET', KEYS[1], string.format('%.0f', at),
             'PX', math.ceil(spacing / 1000) + tonumber(ARGV[7]))
end
if operation == 'sent' then
  if redis.call('GET', KEYS[3]) == ARGV[9] then redis.call('DEL', KEYS[3]) end
  if now + spacing > next_send then push_next(now + spacing) end
  return {'sent', now, 0, 0}
end
if now < tonumber(ARGV[2]) or now >= tonumber(ARGV[3]) then
  return {'day', now, 0, 0}
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if operation == 'exhaust' then
  local limit = tonumber(ARGV[6])
  if used < limit then
    redis.call('SET', KEYS[2], limit, 'EX', tonumber(ARGV[8]))
    used = limit
  end
  return {'count', now, used, 0}
end
if operation == 'count' then
  return {'count', now, used, 0}
end
if used >= tonumber(ARGV[4]) then
  return {'spent', now, used, 0}
end
local live_hold = tonumber(ARGV[12]) * 1000
if ARGV[11] == 'live' then
  redis.call('SET', KEYS[4], string.format('%.0f', now + live_hold), 'PX', ARGV[12])
else
  local live_until = tonumber(redis.call('GET', KEYS[4]) or '0')
  if now < live_until then
    return {'wait', now, used, math.max(live_until - now, spacing)}
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {'wait', now, used, spacing}
end
if now < next_send then
  return {'wait', now, used, next_send - now}
end
push_next(now + spacing)
redis.call('SET', KEYS[3], ARGV[9], 'PX', tonumber(ARGV[10]))
used = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[8]))
return {'granted', now, used, 0}
"""

Operation = Literal["take", "sent", "exhaust", "count"]
Status = Literal["granted", "wait", "spent", "sent", "count", "day"]


def amsterdam_day(at_us: int) -> tuple[date, int, int]:
    """The Europe/Amsterdam date at `at_us` (UTC microseconds) and its bounds in the same unit.

    Summer time begins and ends at 02:00/03:00, never at midnight, so midnight is never
    ambiguous; a day is 23, 24 or 25 hours long.
    """
    day = datetime.fromtimestamp(at_us / 1_000_000, AMSTERDAM).date()

    def midnight_us(of: date) -> int:
        return int(datetime(of.year, of.month, of.day, tzinfo=AMSTERDAM).timestamp()) * 1_000_000

    return day, midnight_us(day), midnight_us(day + timedelta(days=1))


@dataclass(frozen=True)
class SlotReply:
    status: Status
    redis_now_us: int
    used: int
    wait_us: int


class RedisSlots:
    """A `SlotSource` for a deployment of several replicas; see the module's docstring.

    `used_today` is what this replica last heard from Redis (on every grant, and every
    `refresh_s` from `start()` on), so the flow control sees a day that another replica
    spent; the limit itself is only ever checked in Redis.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        rate_per_s: int,
        daily_limit: int,
        margin_s: float = 0.05,
        backoff: wait_base,
        refresh_s: float = 1.0,
        key_prefix: str = KEY_PREFIX,
        wall_clock: Callable[[], float] = time.time,
        on_error: Callable[[str], None] = lambda operation: None,
    ) -> None:
        self.daily_limit = daily_limit
        self._redis = redis
        self._script = redis.register_script(SLOT_SCRIPT)
        self._spacing_us = round(request_spacing_s(rate_per_s, margin_s=margin_s) * 1_000_000)
        self._backoff = backoff
        self._refresh_s = refresh_s
        self._key_prefix = key_prefix
        self._wall_clock = wall_clock
        self._redis_ahead_s = 0.0
        self._day = self._redis_day()
        self._used = 0
        self._exhausted_on: date | None = None
        self._unavailable = False
        self._unsent = ""
        self.last_grant_us: int | None = None
        """Redis' time of this replica's latest grant: what shows the spacing across replicas."""
        self._refresher: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[object]] = set()
        self._on_error = on_error

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        rate_per_s: int,
        daily_limit: int,
        margin_s: float,
        backoff: wait_base,
        refresh_s: float = 1.0,
        key_prefix: str = KEY_PREFIX,
        on_error: Callable[[str], None] = lambda operation: None,
    ) -> Self:
        """With a client of its own, closed by `close()`: one quick retry for a pooled
        connection that Redis dropped, short timeouts, every longer wait left to `take()`."""
        redis = Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 1)
        )
        return cls(
            redis,
            rate_per_s=rate_per_s,
            daily_limit=daily_limit,
            margin_s=margin_s,
            backoff=backoff,
            refresh_s=refresh_s,
            key_prefix=key_prefix,
            on_error=on_error,
        )

    def _redis_day(self) -> date:
        return amsterdam_day(round((self._wall_clock() + self._redis_ahead_s) * 1_000_000))[0]

    @property
    def used_today(self) -> int:
        today = self._redis_day()
        if today != self._day:
            self._day, self._used = today, 0
        if self._exhausted_on == today:
            return max(self._used, self.daily_limit)
        return self._used

    @property
    def unavailable(self) -> bool:
        return self._unavailable

    async def _call(
        self,
        operation: Operation,
        *,
        ceiling: float = 0.0,
        token: str = "",
        priority: Priority = "live",
    ) -> SlotReply:
        """One answer of the script for the day of Redis' clock (see the module's docstring)."""
        while True:
            redis_now_us = round((self._wall_clock() + self._redis_ahead_s) * 1_000_000)
            day, start_us, end_us = amsterdam_day(redis_now_us)
            raw = await self._script(
                keys=[
                    f"{self._key_prefix}:next-send-us",
                    f"{self._key_prefix}:day:{day}",
                    f"{self._key_prefix}:unsent-grant",
                    f"{self._key_prefix}:live-until-us",
                ],
                args=[
                    operation,
                    start_us,
                    end_us,
                    repr(float(ceiling)),
                    self._spacing_us,
                    self.daily_limit,
                    NEXT_SEND_SLACK_MS,
                    DAY_COUNT_TTL_S,
                    token,
                    SEND_LEASE_MS,
                    priority,
                    LIVE_HOLD_MS,
                ],
            )
            status, now_us, used, wait_us = raw
            reply = SlotReply(cast(Status, status.decode()), now_us, used, wait_us)
            self._redis_ahead_s = reply.redis_now_us / 1_000_000 - self._wall_clock()
            if reply.status != "day":
                if reply.status != "sent":
                    self._heard(day, reply.used)
                return reply

    def _heard(self, day: date, used: int) -> None:
        self._day, self._used = day, used

    def _unreachable(self, operation: str, error: BaseException | None) -> None:
        self._unavailable = True
        self._on_error(operation)
        log.warning(
            "the limiter's Redis does not answer; no Elements request until it does",
            operation=operation,
            error=f"{type(error).__name__}: {error}" if error else None,
        )

    async def _call_until_answered(
        self,
        operation: Operation,
        *,
        ceiling: float = 0.0,
        token: str = "",
        priority: Priority = "live",
    ) -> SlotReply:
        async for attempt in retrying_on(
            REDIS_UNREACHABLE,
            wait=self._backoff,
            on_retry=lambda error, _: self._unreachable(operation, error),
        ):
            with attempt:
                reply = await self._call(operation, ceiling=ceiling, token=token, priority=priority)
        self._unavailable = False
        return reply

    async def take(self, *, ceiling: float, backfill: bool = False) -> None:
        """A live ask holds every replica's backfill asks back for `LIVE_HOLD_MS`: the
        live-first rule each process keeps for its own events, kept across replicas."""
        priority: Priority = "backfill" if backfill else "live"
        while True:
            token = uuid.uuid4().hex
            reply = await self._call_until_answered(
                "take", ceiling=ceiling, token=token, priority=priority
            )
            if reply.status == "granted":
                self.last_grant_us = reply.redis_now_us
                self._unsent = token
                return
            if reply.status == "spent":
                raise budget_spent(self.daily_limit)
            await asyncio.sleep(reply.wait_us / 1_000_000)

    async def sent(self) -> None:
        """Ends this replica's latest grant's lease. Best effort: unanswered, the next grant
        waits for the lease to end, and is a spacing after this one's grant in any case."""
        if self._unavailable:
            return
        try:
            await self._call("sent", token=self._unsent)
        except REDIS_UNREACHABLE as error:
            self._unreachable("sent", error)

    def exhaust(self) -> None:
        """Closes the day here at once, and in Redis as soon as it answers."""
        self._exhausted_on = self._redis_day()
        self._in_background(self._call_until_answered("exhaust"))

    def _in_background(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def refresh(self) -> None:
        """Hear the day's count from Redis (other replicas spend it too)."""
        try:
            await self._call("count")
        except REDIS_UNREACHABLE as error:
            self._unreachable("refresh", error)
        else:
            self._unavailable = False

    async def _refresh_forever(self) -> None:
        while True:
            await self.refresh()
            raise_if_cancelled()
            await asyncio.sleep(self._refresh_s)

    async def start(self) -> None:
        if self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_forever())

    async def close(self) -> None:
        """Stop asking; an exhaust not yet in Redis is dropped (Elements will say it again)."""
        tasks = [*self._background, *([self._refresher] if self._refresher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._refresher = None
        await self._redis.aclose()
