"""The worker's memory at start: the state topic read to its end into `DossierMemory`, then
followed while the worker runs; the portal directory told, in the background, where each
record last found its customer.

Loading hands the records over a slice at a time and seeding reads them a slice at a
time, so `/healthz` and the forms are answered while a hundred thousand are loaded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence

import orjson
import structlog
from pydantic import ValidationError

from app.clients.limiter import ElementsLimiter, InProcessSlots
from app.clients.portal import PortalDirectory
from app.kafka.partition_handover import HandoverRecords
from app.kafka.state import (
    DAILY_COUNT_KEY,
    DOSSIER_PREFIX,
    MEDEWERKER_PREFIX,
    StateTopic,
    dossier_values,
)
from app.state.daily_count import DailyCountKeeper
from app.state.memory import DossierMemory
from app.state.record import PortalLocator, upgraded

log = structlog.get_logger(__name__)

LOAD_SLICE = 10_000
"""Records handed to the memory between two turns of the event loop while loading."""
SEED_SLICE = 500
"""Records read between two turns of the event loop while seeding the portal directory."""


class MemoryLoad:
    """Loads and follows the state topic for the memory, the handover records and the day's
    request count (kept here only when the limiter's slots are this process's own)."""

    def __init__(
        self,
        state_topic: StateTopic,
        memory: DossierMemory,
        portal: PortalDirectory,
        handover_records: HandoverRecords,
        limiter: ElementsLimiter,
        daily_count: DailyCountKeeper,
        *,
        timeout_s: float,
        redrive_marks: Callable[[str, bytes | None], None] = lambda key, value: None,
    ) -> None:
        """`redrive_marks` is given every record too: the marks of redriven dead letters
        (`app.kafka.dead_letters.RedriveMarks`)."""
        self.state_topic = state_topic
        self._redrive_marks = redrive_marks
        self._memory = memory
        self._portal = portal
        self._handover_records = handover_records
        self._limiter = limiter
        self._daily_count = daily_count
        self._timeout_s = timeout_s
        self.seeding: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Read the state topic, so the first event already starts from what the last worker
        knew; a load that is retried starts over."""
        began = time.monotonic()
        await self.stop()
        values = await self.state_topic.load(timeout_s=self._timeout_s)
        dossiers = list(dossier_values(values))
        await load_in_slices(self._memory, dossiers)
        for number, value in dossier_values(values, MEDEWERKER_PREFIX):
            self._memory.followed_medewerker(number, value)
        for key, value in values.items():
            self._handover_records.read(key, value)
            self._redrive_marks(key, value)
        self.state_topic.follow(self._followed)
        slots = self._limiter.slots
        saved = DailyCountKeeper.read(values.get(DAILY_COUNT_KEY))
        if isinstance(slots, InProcessSlots) and saved is not None:  # with Redis, it lives there
            slots.restore(saved.day, saved.used)
            self._daily_count.restored(saved)
        log.info(
            "durable memory loaded",
            dossiers=len(self._memory),
            seconds=round(time.monotonic() - began, 3),
        )
        self.seeding = asyncio.create_task(self._seed_portal_directory(dossiers))

    async def stop(self) -> None:
        """Stop seeding and following."""
        if self.seeding is not None:
            self.seeding.cancel()
            await asyncio.gather(self.seeding, return_exceptions=True)
            self.seeding = None
        await self.state_topic.close()

    async def _seed_portal_directory(self, dossiers: list[tuple[str, bytes]]) -> None:
        """In the background once the memory holds the records: the directory finds every
        customer without them too, only with more page reads."""
        began = time.monotonic()
        located = await seed_portal_directory(dossiers, self._portal)
        log.info(
            "portal directory seeded", located=located, seconds=round(time.monotonic() - began, 3)
        )

    def _followed(self, key: str, value: bytes | None) -> None:
        if key.startswith(DOSSIER_PREFIX):
            self._memory.followed(key.removeprefix(DOSSIER_PREFIX), value)
        elif key.startswith(MEDEWERKER_PREFIX):
            self._memory.followed_medewerker(key.removeprefix(MEDEWERKER_PREFIX), value)
        self._handover_records.read(key, value)
        self._redrive_marks(key, value)


def portal_locator(value: bytes) -> PortalLocator | None:
    """Where a dossier record last found its portal customer, read without validating the
    rest of the record: at start-up every record is read for it, and orjson with the locator
    alone costs a third of a full parse (`python -m app bench-state`). A value that is no
    JSON object, of a record version this release cannot read, or without a locator gives
    none (the locator is the same in every version so far). A record
    unreadable elsewhere may still give its locator: it is only where to look first in the
    portal, which the directory checks on every lookup."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if upgraded(document) is None:
        return None
    located = document.get("portal")
    if located is None:
        return None
    try:
        return PortalLocator.model_validate(located)
    except ValidationError:
        return None


async def load_in_slices(memory: DossierMemory, dossiers: Sequence[tuple[str, bytes]]) -> None:
    """Hand the records to the memory a slice at a time, so `/healthz` and the forms are
    answered while a hundred thousand are loaded."""
    for start in range(0, len(dossiers), LOAD_SLICE):
        memory.load(dossiers[start : start + LOAD_SLICE])
        await asyncio.sleep(0)


async def seed_portal_directory(
    dossiers: Iterable[tuple[str, bytes]], portal: PortalDirectory
) -> int:
    """Tell the portal directory where the records last found each customer, a slice at a
    time, so the event loop keeps answering; returns how many customers were located."""
    located = 0
    for seen, (dossier_number, value) in enumerate(dossiers, start=1):
        if (locator := portal_locator(value)) is not None:
            portal.learn(locator.customer_id, dossier_number, locator.page)
            located += 1
        if seen % SEED_SLICE == 0:
            await asyncio.sleep(0)
    return located
