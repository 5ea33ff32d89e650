"""The worker's memory at start: the state topic read to its end into `DossierMemory`, then
followed while the worker runs.

The other readers of the state topic are handed every record too (`readers`: the handover
records, the redrive marks), and the loaded values once (`loaded`: the day's count, the
portal directory's seeding); the composition root (`app.application`) says which.

Loading hands the records over a slice at a time, so `/healthz` and the forms are answered
while a hundred thousand are loaded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from app.kafka.state import (
    DOSSIER_PREFIX,
    MEDEWERKER_PREFIX,
    OnRecord,
    StateTopic,
    dossier_values,
)
from app.state.memory import DossierMemory

log = structlog.get_logger(__name__)

LOAD_SLICE = 10_000
"""Records handed to the memory between two turns of the event loop while loading."""

OnLoaded = Callable[[dict[str, bytes]], Awaitable[None]]


class MemoryLoad:
    """Loads and follows the state topic for the memory, and hands its records to the
    topic's other readers."""

    def __init__(
        self,
        state_topic: StateTopic,
        memory: DossierMemory,
        *,
        timeout_s: float,
        readers: Sequence[OnRecord] = (),
        loaded: Sequence[OnLoaded] = (),
    ) -> None:
        """`readers` are given every record, loaded or followed; `loaded` the values read
        to the topic's end, once per load."""
        self.state_topic = state_topic
        self._memory = memory
        self._timeout_s = timeout_s
        self._readers = tuple(readers)
        self._loaded = tuple(loaded)

    async def load(self) -> None:
        """Read the state topic, so the first event already starts from what the last worker
        knew; a load that is retried starts over."""
        began = time.monotonic()
        await self.state_topic.close()
        values = await self.state_topic.load(timeout_s=self._timeout_s)
        await load_in_slices(self._memory, list(dossier_values(values)))
        for number, value in dossier_values(values, MEDEWERKER_PREFIX):
            self._memory.followed_medewerker(number, value)
        for key, value in values.items():
            for read in self._readers:
                read(key, value)
        self.state_topic.follow(self._followed)
        for loaded in self._loaded:
            await loaded(values)
        log.info(
            "durable memory loaded",
            dossiers=len(self._memory),
            seconds=round(time.monotonic() - began, 3),
        )

    async def stop(self) -> None:
        """Stop following."""
        await self.state_topic.close()

    def _followed(self, key: str, value: bytes | None) -> None:
        if key.startswith(DOSSIER_PREFIX):
            self._memory.followed(key.removeprefix(DOSSIER_PREFIX), value)
        elif key.startswith(MEDEWERKER_PREFIX):
            self._memory.followed_medewerker(key.removeprefix(MEDEWERKER_PREFIX), value)
        for read in self._readers:
            read(key, value)


async def load_in_slices(memory: DossierMemory, dossiers: Sequence[tuple[str, bytes]]) -> None:
    """Hand the records to the memory a slice at a time, so `/healthz` and the forms are
    answered while a hundred thousand are loaded."""
    for start in range(0, len(dossiers), LOAD_SLICE):
        memory.load(dossiers[start : start + LOAD_SLICE])
        await asyncio.sleep(0)
