"""The day's Elements count of a single-replica worker, kept on the state topic.

Without Redis the count lives in the process (`InProcessSlots`), and a restart must not reset
it (docs/reference/events.md: `ELEMENTS_DAILY_LIMIT` is per day). Saving every request would
double the work per request, so the count is saved ahead, in blocks: once it comes within half
a block of what was saved, `used + block` is saved. A restarted worker then starts from at
least the true count — at most one block too high, never too low (unless Kafka took longer to
save than half a block of requests takes to send).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date

import structlog
from pydantic import BaseModel, ValidationError

from app.clients.limiter import InProcessSlots, SlotSource

log = structlog.get_logger(__name__)

DEFAULT_BLOCK = 50


class DailyCount(BaseModel):
    day: date
    used: int


class DailyCountKeeper:
    def __init__(
        self, save: Callable[[DailyCount], Awaitable[None]], *, block: int = DEFAULT_BLOCK
    ) -> None:
        self._save = save
        self._block = block
        self._saved = DailyCount(day=date.min, used=0)
        self._saving: asyncio.Task[None] | None = None

    @staticmethod
    def read(value: bytes | None) -> DailyCount | None:
        if value is None:
            return None
        try:
            return DailyCount.model_validate_json(value)
        except ValidationError:
            log.warning("saved daily Elements count unreadable; starting from zero")
            return None

    def restore(self, value: bytes | None, slots: SlotSource) -> None:
        """At start, the count a previous worker saved (the state topic's value): this
        process's slots start from it, and saving continues from it. With Redis the count
        lives there, and there is nothing to restore."""
        saved = self.read(value)
        if isinstance(slots, InProcessSlots) and saved is not None:
            slots.restore(saved.day, saved.used)
            self.restored(saved)

    def restored(self, count: DailyCount) -> None:
        """The count a previous worker saved is where saving continues from."""
        self._saved = count

    def on_count(self, day: date, used: int) -> None:
        """Called by the slot source whenever the count grows (never awaits)."""
        due = day != self._saved.day or used >= self._saved.used - self._block // 2
        if due and (self._saving is None or self._saving.done()):
            ahead = DailyCount(day=day, used=used + self._block)
            self._saving = asyncio.get_running_loop().create_task(self._save_ahead(ahead))

    async def _save_ahead(self, count: DailyCount) -> None:
        try:
            await self._save(count)
        except Exception as error:
            log.warning("daily Elements count not saved", error=type(error).__name__)
            return
        self._saved = count

    async def flush(self, *, timeout_s: float | None = None) -> None:
        """Wait (at most `timeout_s`) for a save under way, at shutdown."""
        if self._saving is not None:
            await asyncio.wait([self._saving], timeout=timeout_s)
