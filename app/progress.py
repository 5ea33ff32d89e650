"""Every event in flight, its step and what it waits for: an event that makes no progress is seen.

A replica once held an event for five minutes without a log line, and its partition could not
commit meanwhile; nothing showed why. So every wait of an event says what it waits for on the
event's ticket (`Ticket.waiting`: a dossier another event holds, an Elements slot, a retry's
backoff, an upstream's answer, Kafka taking the result), and the pipeline names the step it
is in (`Ticket.progress`). Progress is a step beginning, a step boundary
(`Ticket.checkpoint`), or the end of a wait: what the event waited for came, or failed.

The consumer tracks every event it processes (`EventsInFlight.tracked`); the age of the
oldest is the gauge `elements_sync_oldest_event_in_flight_seconds`, and `StallWatch` logs
one warning per stall — an event with no progress for `LOG_STALL_AFTER_S` — naming its step
and what it waits for; once it progressed, a new stall is logged anew.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger(__name__)

CHECK_INTERVAL_S = 5.0
"""How often `StallWatch` looks, at most: a stall is logged this long after it counts, or less."""


def _now() -> float:
    return asyncio.get_running_loop().time()


@dataclass(eq=False)
class Wait:
    """What an event waits for; told more once known (who holds the lease it waits for)."""

    what: str


@dataclass(eq=False)
class InFlight:
    """One event being processed (event-loop times)."""

    message: str
    """The input message it came from: `topic[partition]@offset`."""
    started: float
    """When the consumer took the message."""
    last_progress: float
    step: str = "reading the message"
    waits: list[Wait] = field(default_factory=list)
    """What it waits for now (several at once while it reads upstreams side by side)."""
    context: dict[str, Any] = field(default_factory=dict)
    """Its log context (event id and type, key, dossier number) as of its last progress or
    wait: the stall's line carries what the event's own lines carry, so they are found together."""
    stall_logged: bool = False

    def progressed(self, step: str | None = None) -> None:
        self.last_progress = _now()
        self.stall_logged = False
        if step is not None:
            self.step = step
        self._note_context()

    @contextmanager
    def waiting(self, what: str) -> Iterator[Wait]:
        wait = Wait(what)
        self.waits.append(wait)
        self._note_context()
        try:
            yield wait
        finally:
            self.waits.remove(wait)
            self.progressed()

    def _note_context(self) -> None:
        self.context = structlog.contextvars.get_contextvars()


class EventsInFlight:
    """The events the consumer processes now."""

    def __init__(self) -> None:
        self._events: set[InFlight] = set()

    @contextmanager
    def tracked(self, message: str, *, started: float) -> Iterator[InFlight]:
        """Track an event while the block processes it; `started` is when it was taken."""
        event = InFlight(message, started, last_progress=_now())
        self._events.add(event)
        try:
            yield event
        finally:
            self._events.discard(event)

    def oldest_age_s(self) -> float:
        """Seconds since the oldest event in flight was taken; 0 when none is."""
        if not self._events:
            return 0.0
        return _now() - min(event.started for event in self._events)

    def newly_stalled(self, *, after_s: float) -> list[InFlight]:
        """The events without progress for `after_s` whose stall was not logged yet."""
        since = _now() - after_s
        return [e for e in self._events if not e.stall_logged and e.last_progress <= since]


class StallWatch:
    """Logs each event that makes no progress for `after_s`, once per stall."""

    def __init__(self, events: EventsInFlight, *, after_s: float) -> None:
        self._events = events
        self._after_s = after_s
        self._task: asyncio.Task[None] | None = None

    def check(self) -> None:
        now = _now()
        for event in self._events.newly_stalled(after_s=self._after_s):
            event.stall_logged = True
            stall = {
                "message": event.message,
                "step": event.step,
                "waiting_for": "; ".join(wait.what for wait in event.waits) or None,
                "no_progress_s": round(now - event.last_progress, 1),
                "in_flight_s": round(now - event.started, 1),
            }
            log.warning("event makes no progress", **{**event.context, **stall})

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(min(CHECK_INTERVAL_S, self._after_s))
            self.check()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="stall watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
