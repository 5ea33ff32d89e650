"""One upstream read shared by concurrent callers, never older than the caller's event.

At 10,000 customers ANVA's `/account/mine` is about 2 MB; downloading it once per event
made the listing the bottleneck. `SharedRead` lets events share a read, with one rule
that keeps the contract ("the customer's current state is read when the event is
processed"): a caller only uses a read that *started* after its event arrived (the
`fresh_after` it asks with, its ticket's `arrived`, `app.ticket`). So a caller joins a read in flight or reuses the
last one when it started late enough. Otherwise it waits for the next read: at once
when none is in flight, else as soon as the one in flight ends. Every caller that arrives
meanwhile joins that next read, so under a steady stream of events at most one read runs
and one waits, and the reads per event fall as the events per second rise (a read per
arrival would instead spend the worker's CPU on parsing the same listing over and over).
A failed read is shared by those waiting on it (each retries as it would have) but never
reused afterwards.

`min_interval_s` spaces the starts of reads: a next read waits until that long after the
last one started. Without it, a faster read (a smaller listing, a faster parser) would
be shared by fewer events and cost as much CPU in total; with it, reads per event fall
below `1 / (events per second * min_interval_s)` at the price of that much latency.

`reuse_finished=False` makes a read shared only while it runs: a caller joins a read in
flight that started late enough, never a finished one, and the finished read is let go.
The portal directory reads a page this way (one `SharedRead` per page number) because it
keeps locators, never a customer's state: holding every page's last read would keep the
whole listing in memory as a cache beside the index. A flag rather than a second class
or keyed reads, because the rest of the rule (join, else wait for the next read, a
failure shared but never reused) is the same for both users, and the per-page keying is
the directory's concern (a dict of these), not the read's. It takes no `min_interval_s`:
the spacing is measured from the last read, which it does not keep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


def loop_time() -> float:
    return asyncio.get_running_loop().time()


@dataclass(frozen=True)
class _Read(Generic[T]):
    started_at: float
    task: asyncio.Task[T]

    @property
    def failed(self) -> bool:
        return self.task.done() and (self.task.cancelled() or self.task.exception() is not None)


def _retrieve(task: asyncio.Task[object]) -> None:
    """Mark a failure as seen, so a read whose callers all left logs no 'never retrieved'."""
    if not task.cancelled():
        task.exception()


class SharedRead(Generic[T]):
    """`get` answers with a result of `fetch` that started after the caller's event arrived."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[T]],
        *,
        clock: Callable[[], float] = loop_time,
        min_interval_s: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        reuse_finished: bool = True,
    ) -> None:
        if min_interval_s > 0 and not reuse_finished:
            raise ValueError("min_interval_s spaces reads from the last one, which is kept")
        self._fetch = fetch
        self._reuse_finished = reuse_finished
        self._min_interval_s = min_interval_s
        self._sleep = sleep
        self._clock = clock
        self._latest: _Read[T] | None = None
        self._next: asyncio.Task[T] | None = None
        self.reads = 0
        """How many reads were started: what the sharing saved is callers minus reads."""

    async def _run(self) -> T:
        return await self._fetch()

    def _fresh_read(self, fresh_after: float) -> asyncio.Task[T]:
        latest = self._latest
        if latest is not None and latest.started_at >= fresh_after and self._reusable(latest):
            return latest.task
        if self._next is not None:
            return self._next
        if latest is None or (latest.task.done() and not self._too_soon(latest)):
            return self._start().task
        self._next = asyncio.create_task(self._after(latest))
        self._next.add_done_callback(_retrieve)
        return self._next

    def _reusable(self, latest: _Read[T]) -> bool:
        if self._reuse_finished:
            return not latest.failed
        return not latest.task.done()

    def _too_soon(self, latest: _Read[T]) -> bool:
        return self._clock() < latest.started_at + self._min_interval_s

    def _start(self) -> _Read[T]:
        task = asyncio.create_task(self._run())
        task.add_done_callback(_retrieve)
        read = self._latest = _Read(self._clock(), task)
        if not self._reuse_finished:
            task.add_done_callback(lambda _: self._let_go(read))
        self.reads += 1
        return read

    def _let_go(self, read: _Read[T]) -> None:
        """A finished read is not kept when it will not be reused; one waiting for it to
        end (`_after`) holds it itself."""
        if self._latest is read:
            self._latest = None

    async def _after(self, latest: _Read[T]) -> T:
        """The next read, started once the latest has ended and `min_interval_s` after it
        started."""
        await asyncio.wait([latest.task])
        if (wait_s := latest.started_at + self._min_interval_s - self._clock()) > 0:
            await self._sleep(wait_s)
        self._next = None
        return await self._start().task

    async def get(self, fresh_after: float) -> T:
        """The result of a read that started at or after `fresh_after` (event-loop time); a
        caller that is cancelled leaves the read running for the others."""
        return await asyncio.shield(self._fresh_read(fresh_after))
