"""Per-key ordering with bounded concurrency.

Kafka orders messages within a partition, but a partition holds many keys; running
one message at a time per partition would make the consumer, not the Elements
limiter, the bottleneck. `KeyedDispatcher` runs each key's messages in arrival order
and different keys side by side, at most `max_in_flight` at once; `submit` waits
for a free slot, which is the consumer's back-pressure. The consumer reserves the slot
and starts the job apart (`reserve`, `start`): a message whose partition is handed over
while it waits for a slot is dropped, never started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable

import structlog

log = structlog.get_logger(__name__)

Job = Callable[[], Awaitable[None]]


class KeyedDispatcher:
    def __init__(self, *, max_in_flight: int) -> None:
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tails: dict[Hashable, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def submit(self, key: Hashable, job: Job) -> asyncio.Task[None]:
        """Queue `job` behind the key's earlier jobs; returns its task once it is scheduled."""
        await self.reserve()
        return self.start(key, job)

    async def reserve(self) -> None:
        """Wait for a free slot, for the next `start`."""
        await self._slots.acquire()

    def start(self, key: Hashable, job: Job) -> asyncio.Task[None]:
        """Queue `job` behind the key's earlier jobs, in the slot `reserve` took."""
        previous = self._tails.get(key)
        task = asyncio.create_task(self._run_after(previous, job))
        self._tails[key] = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(key, done))
        return task

    @staticmethod
    async def _run_after(previous: asyncio.Task[None] | None, job: Job) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await job()

    def _finished(self, key: Hashable, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("job failed", key=repr(key), error=repr(error), exc_info=error)
        self._tasks.discard(task)
        self._slots.release()
        if self._tails.get(key) is task:
            del self._tails[key]

    async def drain(self, timeout_s: float) -> bool:
        """Wait for every queued job; False when some were still running at the deadline."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        return not pending


class NewestArrivals:
    """When the newest message of each queue arrived, while one of its jobs has not ended.

    A job's reads must start after that moment, not its own arrival: every event queued
    behind it may then be served by its sync (`app.pipeline.coalesce`).
    """

    def __init__(self) -> None:
        self._newest: dict[Hashable, float] = {}

    def arrived(self, queue: Hashable, at: float) -> None:
        self._newest[queue] = at

    def newest(self, queue: Hashable, *, since: float) -> float:
        """The newest arrival in `queue`; `since`, the job's own, when none is newer."""
        return self._newest.get(queue, since)

    def ended(self, queue: Hashable, arrived: float) -> None:
        """The job that arrived at `arrived` ended: the queue forgets it, unless a newer came."""
        if self._newest.get(queue) == arrived:
            del self._newest[queue]
