"""An event's ticket: what its processing depends on besides its message, handed down with it.

The consumer makes one per message when its processing starts and gives it to the service,
which binds the pipeline's context to it (`SyncContext.for_event`); from there it reaches
every client and the memory as an argument. Four things travel on it:

- `arrived`: when the newest event of its key arrived (event-loop time). A shared upstream
  read is used only when it started after that (`app.clients.shared_read`), so the event
  never sees upstream state older than itself, and every event queued behind it on its key
  may be served by its sync (`app.pipeline.coalesce`);
- `priority`: a backfill event takes an Elements slot only while no live event is in flight,
  and never the share of the day's budget kept for live events (`app.clients.limiter`);
- `handover`: its partition's handover (`app.handover`), which stops it at its next step
  boundary once the partition is taken away;
- `in_flight`: where the consumer tracks it (`app.progress`): every wait says on the ticket
  what it waits for (`waiting`) and the pipeline names its steps (`progress`), so an event
  that makes no progress is seen, and what it waits for.

Work outside an event — the forms prefill, operator commands, probes — has no ticket of its
own: `Ticket.outside_event()` stands for it at the moment it asks (live, arriving now,
never handed over), so it shares only reads that start after it asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from app.handover import Handover
from app.progress import InFlight

T = TypeVar("T")

Priority = Literal["live", "backfill"]


@dataclass(frozen=True)
class Ticket:
    arrived: float
    """Event-loop time (`loop.time()`) when the newest event of this key arrived."""
    priority: Priority = "live"
    handover: Handover | None = None
    """None outside the consumer: nothing can take the work away."""
    in_flight: InFlight | None = None
    """None outside the consumer: nobody watches the work's progress."""

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

    def waiting(self, what: str) -> AbstractContextManager[None]:
        """The block waits for `what` ("an Elements rate slot"); its end is progress."""
        return nullcontext() if self.in_flight is None else self.in_flight.waiting(what)

    def checkpoint(self) -> None:
        """A step boundary, which is progress: raises `HandedOver` once the event's partition
        was taken away."""
        if self.in_flight is not None:
            self.in_flight.progressed()
        if self.handover is not None:
            self.handover.checkpoint()

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
