"""Per-key mutual exclusion: work on one dossier is serialised across event types.

The consumer already orders messages per Kafka key, but a form (keyed by portal customer
id) and a customer event (keyed by dossier number) can name the same dossier.
A holder's `waiting` wraps its wait for a lock someone else holds: a live event that waits
there must not keep a backfill holding it from its Elements requests (see `LiveWork`). Its
`interruptible` runs the wait, so that the waiter's handover ends it (`Ticket.interruptible`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from typing import Any

Interruptible = Callable[[Coroutine[Any, Any, bool]], Awaitable[bool]]


async def _to_the_end(wait: Coroutine[Any, Any, bool]) -> bool:
    return await wait


class KeyedLocks:
    """One lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(
        self,
        key: Hashable,
        *,
        waiting: Callable[[], AbstractContextManager[object]] = nullcontext,
        interruptible: Interruptible = _to_the_end,
    ) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            if lock.locked():
                with waiting():
                    await interruptible(lock.acquire())
            else:
                await lock.acquire()
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
