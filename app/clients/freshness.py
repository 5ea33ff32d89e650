"""When the event being processed arrived, so a shared upstream read can be judged fresh enough.

Reads of ANVA and the portal may be shared between concurrent events (one `/account/mine`
download serves many), but an event must never see upstream state older than itself:
it may only use a read that started after it arrived. The consumer sets `EVENT_ARRIVED`
in the task that processes the message; callers outside an event (the forms prefill, the
operator commands) get "now", so they only share reads that start after they ask.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

EVENT_ARRIVED: ContextVar[float | None] = ContextVar("EVENT_ARRIVED", default=None)
"""Event-loop time (`loop.time()`) when the consumer took the message; None outside an event."""


def arrived_at() -> float:
    """When the current event arrived, or now when no event is being processed."""
    arrived = EVENT_ARRIVED.get()
    return asyncio.get_running_loop().time() if arrived is None else arrived
