"""An event's stop: when its partition is taken away, the event stops at its next step boundary.

Letting the partition itself go (waiting for its events, writing down, committing) is
`app.kafka.partition_handover`; this is the part each event carries.

A rebalance (a replica joins, or leaves after SIGTERM) gives a partition to its next owner,
which fetches every message from the committed offset on. An event of that partition still
running here would run beside the same event there: two syncs of one dossier at once, two
results. So the consumer gives every event an `EventStop`, and when the partition goes it
requests the stop; the event then ends at its next step boundary, with no result and its
offset not released, and the next owner processes it instead.

Step boundaries are the moments when stopping loses nothing that Elements holds:
before the event's processing starts, before each Elements request (`ElementsLimiter.acquire`,
which every request passes), before each dossier record written ahead of Elements writes
(`DossierMemory.keep_before_writes`; a record of what Elements acknowledged is always written), and
the waits in between that hold no request (a limiter slot, a retry's backoff, the daily
budget). A request in flight is never cut: a slot once granted is used, and the stop waits
for the answer. The dossier's record is then the one written before the event's first
write — marked unread (`DossierMemory.before_writes`) — so the next owner reads Elements
rather than trusting it.

`HandedOver` derives from `BaseException`, as `asyncio.CancelledError` does, for the same
reason: it must pass every `except Exception` on its way out. The outcome ladder turns any
`Exception` into a failed result, `writes_kept` into an `InternalError`, and
`DossierMemory.remember` logs one and carries on; a handed-over event has no outcome at all.

The stop travels on the event's ticket (`app.ticket.Ticket`), which the consumer makes
for each message and hands down with it to every step boundary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class HandedOver(BaseException):
    """The event's partition was taken away: it stopped at a step boundary, without a result."""


class EventStop:
    """One event's stop: its partition, whether the partition was taken away (the stop
    requested), and whether the event has ended (finished or stopped)."""

    def __init__(self, partition: Hashable) -> None:
        self.partition = partition
        self.task: asyncio.Task[None] | None = None
        """The task that runs the event, once it was given one; cancelled past the deadline."""
        self.stopped = False
        """True once the event stopped at a step boundary (rather than finished)."""
        self._requested = asyncio.Event()
        self._ended = asyncio.Event()

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def request(self) -> None:
        """The partition goes: stop at the next step boundary."""
        self._requested.set()

    def end(self, *, stopped: bool) -> None:
        self.stopped = stopped
        self._ended.set()

    async def until_ended(self) -> None:
        await self._ended.wait()

    def checkpoint(self) -> None:
        """A step boundary: raises `HandedOver` once the stop was requested."""
        if self.requested:
            raise HandedOver(f"partition {self.partition} was handed over")

    async def interruptible(self, work: Coroutine[Any, Any, T]) -> T:
        """Await `work`, a wait that holds no request; a stop ends it with `HandedOver`.

        Should `work` complete as the stop comes (a limiter slot granted), its result stands:
        a granted slot is used, never dropped.
        """
        if self.requested:
            work.close()
            self.checkpoint()
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._requested.wait())
        try:
            await asyncio.wait((task, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait((task,))
        if task.cancelled():
            self.checkpoint()
        return task.result()
