"""An event's ticket: what its processing depends on besides its message, handed down with it.

The consumer makes one per message when its processing starts and gives it to the service,
which binds the pipeline's context to it (`SyncContext.for_event`); from there it reaches
every client and the memory as an argument. Five things travel on it:

- `arrived`: when the newest event of its key arrived (event-loop time). A shared upstream
  read is used only when it started after that (`app.clients.shared_read`), so the event
  never sees upstream state older than itself, and every event queued behind it on its key
  may be served by its sync (`app.pipeline.coalesce`);
- `priority`: a backfill event takes an Elements slot only while no live event is in flight,
  and never the share of the day's budget kept for live events (`app.clients.limiter`);
- `handover`: its partition's handover (`app.event_stop`), which stops it at its next step
  boundary once the partition is taken away;
- the dossier it owns, once it owns one (`owning`): with several replicas a lease that must be
  known valid at every step boundary, and for a while longer before every Elements write
  (`app.state.ownership`);
- `in_flight`: where the consumer tracks it (`app.progress`): every wait says on the ticket
  what it waits for (`waiting`) and the pipeline names its steps (`progress`), so an event
  that makes no progress is seen, and what it waits for.

Work outside an event — the forms prefill, operator commands, probes — has no ticket of its
own: `Ticket.outside_event()` stands for it at the moment it asks (live, arriving now,
never handed over), so it shares only reads that start after it asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from app.event_stop import EventStop
from app.progress import InFlight, Wait

T = TypeVar("T")

Priority = Literal["live", "backfill"]

OwnershipCheck = Callable[[bool], None]
"""Raises `OwnershipLost` unless the dossier is still owned (for a write: long enough for it)."""


@dataclass(frozen=True)
class Ticket:
    arrived: float
    """Event-loop time (`loop.time()`) when the newest event of this key arrived."""
    priority: Priority = "live"
    handover: EventStop | None = None
    """None outside the consumer: nothing can take the work away."""
    in_flight: InFlight | None = None
    """None outside the consumer: nobody watches the work's progress."""
    _owned: list[OwnershipCheck] = field(default_factory=list, compare=False, repr=False)
    """The checks of the dossiers the event owns now (`owning`)."""

    @classmethod
    def outside_event(cls) -> Ticket:
        """Work no event asked for, as of now."""
        return cls(asyncio.get_running_loop().time())

    @property
    def message(self) -> str:
        """The event's input message (`topic[partition]@offset`), to name it to other events."""
        return "work outside an event" if self.in_flight is None else self.in_flight.message

    @property
    def backfill(self) -> bool:
        return self.priority == "backfill"

    def progress(self, step: str) -> None:
        """The event begins `step` (a short phrase in the domain's words: "planning")."""
        if self.in_flight is not None:
            self.in_flight.progressed(step)

    def waiting(self, what: str) -> AbstractContextManager[Wait]:
        """The block waits for `what` ("an Elements rate slot"); its end is progress."""
        return nullcontext(Wait(what)) if self.in_flight is None else self.in_flight.waiting(what)

    def checkpoint(self) -> None:
        """A step boundary, which is progress: raises `HandedOver` once the event's partition
        was taken away, and `OwnershipLost` once the dossier it owns is not known to be its
        own any more."""
        if self.in_flight is not None:
            self.in_flight.progressed()
        if self.handover is not None:
            self.handover.checkpoint()
        for check in self._owned:
            check(False)

    def before_write(self) -> None:
        """Just before an Elements write, its slot granted (which the handover leaves to be
        used): the dossier's lease known valid long enough for the write to end inside it."""
        for check in self._owned:
            check(True)

    @contextmanager
    def owning(self, check: OwnershipCheck) -> Iterator[None]:
        """While the event owns a dossier, its step boundaries and writes ask `check`."""
        self._owned.append(check)
        try:
            yield
        finally:
            self._owned.remove(check)

    async def interruptible(self, work: Coroutine[Any, Any, T]) -> T:
        """`work`, a wait that holds no request, ended by the event's handover."""
        if self.handover is None:
            return await work
        return await self.handover.interruptible(work)

    async def pause(self, seconds: float) -> None:
        """`asyncio.sleep`, ended by the event's handover: a backoff holds no request."""
        await self.interruptible(asyncio.sleep(seconds))


def or_now(ticket: Ticket | None) -> Ticket:
    """`ticket`, or for work outside an event one as of now."""
    return Ticket.outside_event() if ticket is None else ticket
