"""The one gate every Elements request passes: a rolling-second limit and a daily budget.

`AsyncLimiter(5, 1)` would let a burst of up to nine through in the first second and
burst again after every idle spell; a server that counts requests in any rolling
second answers 429 to that. Spacing requests evenly instead — a bucket of one that
drains every `(1 + margin) / rate` seconds — can never put more than `rate` requests
in any one-second window, and the margin absorbs network jitter between our clock
and the server's. At 5/s with a 50 ms margin that is one request every 210 ms,
95% of the allowance. The spacing counts from when a request really went out (`sent`),
which aiolimiter's bucket cannot express (it counts from the grant); with `AsyncLimiter(1,
spacing)` in front it only ever waited less than the spacing after it, so it is out of the
path, and waiters take turns on one lock.

Backfill events (a ticket of priority "backfill", `app.ticket`) take a slot only while no
live event is in flight, and never the last `backfill_reserve` share of the day's budget: a backfill
must never delay a live event, nor spend what the day's live events will need.

Every wait here ends when the ticket's event is handed over (`app.event_stop`): `acquire` is
the step boundary before each Elements request. A slot once granted is used.

Where the slots come from is a `SlotSource`: `InProcessSlots` (the spacing and the day's
count in this process, for a deployment of one replica) or `RedisSlots`
(`app.clients.redis_slots`: one spacing and one count for every replica). The priority
logic stays in `ElementsLimiter`, in this process, in front of either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from app.errors import BackfillReserveReached, DailyBudgetExhausted
from app.ticket import Priority, Ticket

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
"""Elements counts its daily limit per calendar day here; so do we, and the simulator."""


WAITING_FOR_A_SLOT: dict[Priority, str] = {
    "live": "an Elements rate slot",
    "backfill": "an Elements rate slot while no live event is in flight",
}
"""What an event waits for in `ElementsLimiter.acquire`, by its priority."""


def today_in_amsterdam() -> date:
    return datetime.now(AMSTERDAM).date()


def seconds_until_midnight_in_amsterdam(now: datetime) -> float:
    """Until the day's budget starts again. Midnight is reckoned in Amsterdam's own calendar
    (days of 23 and 25 hours included) and the difference taken in UTC: aware datetimes
    that share a tzinfo subtract as wall-clock times, which would be an hour off across a
    change of summer time."""
    tomorrow = now.astimezone(AMSTERDAM).date() + timedelta(days=1)
    midnight = datetime.combine(tomorrow, time(0), tzinfo=AMSTERDAM)
    return (midnight.astimezone(UTC) - now.astimezone(UTC)).total_seconds()


def request_spacing_s(rate_per_s: int, *, margin_s: float) -> float:
    """Seconds between two requests so that no rolling second holds more than `rate_per_s`."""
    return (1.0 + margin_s) / rate_per_s


def budget_spent(daily_limit: int) -> DailyBudgetExhausted:
    return DailyBudgetExhausted(f"daily Elements budget of {daily_limit} requests is spent")


class SlotSource(Protocol):
    """Grants Elements slots, spaced for the whole deployment, and counts the day's requests."""

    daily_limit: int

    async def take(self, *, ceiling: float, backfill: bool = False) -> None:
        """Wait for the next slot and count it in today's requests; raises
        `DailyBudgetExhausted` when today's count has reached `ceiling` (at most the daily
        limit). Cancelled while waiting, nothing is counted — or, when the count was made
        elsewhere and its answer lost, one request too many is: never one too few. A
        `backfill` request gives way to the live requests of other processes sharing the
        slots (this process's own live work it waits out before asking)."""

    async def sent(self) -> None:
        """The request granted last went out now: the next slot is a spacing from here."""

    @property
    def used_today(self) -> int:
        """Requests counted today (Europe/Amsterdam), as far as this process knows."""

    def exhaust(self) -> None:
        """Elements says the day's budget is spent: count the day as full."""

    @property
    def unavailable(self) -> bool:
        """True while slots cannot be granted for a reason other than the budget."""

    async def start(self) -> None:
        """Begin background work, if the source has any."""

    async def close(self) -> None:
        """End background work and release connections."""


class InProcessSlots:
    """Today's spacing and count, kept in this process: right for one replica only.

    The count is lost when the process ends unless its owner saves it: `on_count` is
    called whenever it grows, and `restore` puts a saved count back before work starts.
    """

    def __init__(
        self,
        *,
        rate_per_s: int,
        daily_limit: int,
        margin_s: float = 0.05,
        today: Callable[[], date] = today_in_amsterdam,
        on_count: Callable[[date, int], None] = lambda day, used: None,
    ) -> None:
        self.daily_limit = daily_limit
        self._spacing_s = request_spacing_s(rate_per_s, margin_s=margin_s)
        self._not_before = 0.0
        self._today = today
        self._day = today()
        self._used = 0
        self._on_count = on_count

    def _roll_day(self) -> None:
        today = self._today()
        if today != self._day:
            self._day = today
            self._used = 0

    @property
    def used_today(self) -> int:
        self._roll_day()
        return self._used

    @property
    def unavailable(self) -> bool:
        return False

    def restore(self, day: date, used: int) -> None:
        """Put back a count saved earlier; a count of another day than today is stale."""
        self._roll_day()
        if day == self._day:
            self._used = max(self._used, used)

    def _count(self, used: int) -> None:
        self._used = used
        self._on_count(self._day, used)

    def exhaust(self) -> None:
        self._roll_day()
        self._count(max(self._used, self.daily_limit))

    async def take(self, *, ceiling: float, backfill: bool = False) -> None:
        """The day's count is taken only once the slot is granted (nothing awaits between
        the check and the count), so a waiter that is cancelled, or that waited across
        midnight, never miscounts a day."""
        loop = asyncio.get_running_loop()
        # Looked at again after each sleep: the request granted before may go out only now
        # (`sent`), which moves the next slot later.
        while (late_s := self._not_before - loop.time()) > 0:  # noqa: ASYNC110 - a deadline that moves
            await asyncio.sleep(late_s)
        if self.used_today >= ceiling:
            raise budget_spent(self.daily_limit)
        self._count(self._used + 1)
        self._not_before = loop.time() + self._spacing_s

    async def sent(self) -> None:
        now = asyncio.get_running_loop().time()
        self._not_before = max(self._not_before, now + self._spacing_s)

    async def start(self) -> None:
        """Nothing runs in the background."""

    async def close(self) -> None:
        """Nothing to release."""


@contextmanager
def _while_live(
    priority: Priority, begin: Callable[[], None], end: Callable[[], None]
) -> Iterator[None]:
    """`begin` and, when the block ends, `end`, for a live event; nothing for a backfill."""
    if priority != "live":
        yield
        return
    begin()
    try:
        yield
    finally:
        end()


class LiveWork:
    """How many live events are in flight, and a signal for when none is.

    A live event that waits for a dossier another event holds steps aside
    (`stepped_aside`): the holder may be a backfill that waits for live work to end,
    and would otherwise wait for the live event that waits for it.
    """

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return self._count

    def started(self) -> None:
        self._count += 1
        self._idle.clear()

    def finished(self) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()

    def counted(self, priority: Priority) -> AbstractContextManager[None]:
        """While an event of `priority` runs: a live one counts."""
        return _while_live(priority, self.started, self.finished)

    def stepped_aside(self, priority: Priority) -> AbstractContextManager[None]:
        """While a live event waits on something a backfill may hold, it does not count."""
        return _while_live(priority, self.finished, self.started)

    @property
    def idle(self) -> bool:
        return self._idle.is_set()

    async def until_idle(self) -> None:
        await self._idle.wait()


class ElementsLimiter:
    """Shared by every Elements call (token requests too) of this process.

    The daily budget counts requests per calendar day in Europe/Amsterdam, which is
    when Elements resets its own count; `exhaust()` lets a daily-limit 429 from
    Elements close the day early. Without `slots`, the slots are this process's own
    (`InProcessSlots` from `rate_per_s`, `margin_s`, `today` and `on_count`).
    """

    def __init__(
        self,
        *,
        rate_per_s: int,
        daily_limit: int,
        margin_s: float = 0.05,
        today: Callable[[], date] = today_in_amsterdam,
        budget_poll_s: float = 5.0,
        backfill_reserve: float = 0.0,
        slots: SlotSource | None = None,
        on_count: Callable[[date, int], None] = lambda day, used: None,
        on_wait: Callable[[float], None] = lambda waited_s: None,
    ) -> None:
        self.daily_limit = daily_limit
        self.backfill_reserve = backfill_reserve
        self.live = LiveWork()
        self.slots: SlotSource = slots or InProcessSlots(
            rate_per_s=rate_per_s,
            daily_limit=daily_limit,
            margin_s=margin_s,
            today=today,
            on_count=on_count,
        )
        self._in_turn = asyncio.Lock()
        self._budget_poll_s = budget_poll_s
        self._on_wait = on_wait

    @property
    def remaining_today(self) -> int:
        return max(self.daily_limit - self.slots.used_today, 0)

    def exhaust(self) -> None:
        """Elements says the day's budget is spent, whatever our own count says."""
        self.slots.exhaust()

    @property
    def exhausted(self) -> bool:
        return self.remaining_today <= 0

    @property
    def unavailable(self) -> bool:
        """No slot can be had for now (the shared limiter does not answer): intake pauses."""
        return self.slots.unavailable

    @property
    def backfill_paused(self) -> bool:
        """Only the share of today's budget kept for live events is left."""
        return self.remaining_today <= self.backfill_reserve * self.daily_limit

    def _spent_for(self, ticket: Ticket) -> bool:
        return self.backfill_paused if ticket.backfill else self.exhausted

    def _ceiling(self, ticket: Ticket) -> float:
        """The day's count the ticket's request must stay below."""
        if ticket.backfill:
            return self.daily_limit * (1.0 - self.backfill_reserve)
        return self.daily_limit

    async def wait_for_budget(self, ticket: Ticket) -> None:
        """Return once today's budget has room again for the ticket's priority (after midnight
        Europe/Amsterdam); a handover of the event ends the wait."""
        with ticket.waiting("today's Elements budget to reset at midnight Europe/Amsterdam"):
            while self._spent_for(ticket):
                await ticket.pause(self._budget_poll_s)

    async def start(self) -> None:
        await self.slots.start()

    async def close(self) -> None:
        await self.slots.close()

    async def acquire(self, ticket: Ticket) -> float:
        """Wait for a slot; returns the seconds waited. Raises when today's budget is spent.

        The slot source checks the day's count against the ticket's ceiling when it grants
        the slot. A backfill acquirer waits its turn only while no live event is in flight,
        and looks again once it holds the turn, so it gives way to a live event that started
        meanwhile. This is the step boundary before every Elements request: the event's
        handover raises `HandedOver` here, also while it waits; once granted, the slot is
        used.
        """
        ticket.checkpoint()
        self._raise_if_exhausted(ticket)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with ticket.waiting(WAITING_FOR_A_SLOT[ticket.priority]):
            await ticket.interruptible(self._slot(ticket))
        waited = loop.time() - started
        self._on_wait(waited)
        return waited

    async def _slot(self, ticket: Ticket) -> None:
        await self._take_turn(ticket)
        try:
            await self.slots.take(ceiling=self._ceiling(ticket), backfill=ticket.backfill)
        except DailyBudgetExhausted:
            self._raise_if_exhausted(ticket)
            raise
        finally:
            self._in_turn.release()

    async def sent(self) -> None:
        """The request granted last went out only now: the next one waits a spacing from here.

        A grant is not an arrival: a first connection, or a busy event loop, can hold a
        request back after its grant while the next one goes out on time, and the server
        then sees the two closer than the spacing. The client reports when the request's
        headers were written, and the spacing counts from there.
        """
        await self.slots.sent()

    async def unused(self) -> None:
        """The slot granted last will carry no request: ends it as if its request went out
        now. The next grant is then a spacing from now, and a shared limiter's lease on it
        ends at once instead of holding every replica's next grant up until it runs out.
        The day's count keeps it: one too many, never one too few."""
        await self.slots.sent()

    async def _take_turn(self, ticket: Ticket) -> None:
        """Hold `_in_turn`; a backfill holds it only while no live event is in flight."""
        backfill = ticket.backfill
        while True:
            if backfill:
                await self.live.until_idle()
            await self._in_turn.acquire()
            if not backfill or self.live.idle:
                return
            self._in_turn.release()

    def _raise_if_exhausted(self, ticket: Ticket) -> None:
        if self.exhausted:
            raise budget_spent(self.daily_limit)
        if ticket.backfill and self.backfill_paused:
            raise BackfillReserveReached(
                f"only the {self.backfill_reserve:.0%} of today's Elements budget kept for "
                "live events is left; the backfill goes on tomorrow"
            )
