"""Seeding the portal directory at start: where each dossier record of the state topic last
found its customer, told to the directory in the background once the memory is loaded.

The directory finds every customer without it too, only with more page reads. Seeding
reads the records a slice at a time, so `/healthz` and the forms are answered while a
hundred thousand are read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import structlog

from app.clients.portal import PortalDirectory
from app.kafka.state import dossier_values
from app.state.record import portal_locator

log = structlog.get_logger(__name__)

SEED_SLICE = 500
"""Records read between two turns of the event loop while seeding the portal directory."""


class PortalSeeding:
    """The background task that seeds the directory from the loaded state topic."""

    def __init__(self, portal: PortalDirectory) -> None:
        self._portal = portal
        self.seeding: asyncio.Task[None] | None = None

    async def start(self, values: dict[str, bytes]) -> None:
        """Seed from the state topic's values, in the background; a seeding under way (of a
        load that is retried) ends first."""
        await self.stop()
        self.seeding = asyncio.create_task(self._seed(list(dossier_values(values))))

    async def stop(self) -> None:
        if self.seeding is not None:
            self.seeding.cancel()
            await asyncio.gather(self.seeding, return_exceptions=True)
            self.seeding = None

    async def _seed(self, dossiers: list[tuple[str, bytes]]) -> None:
        began = time.monotonic()
        located = await seed_portal_directory(dossiers, self._portal)
        log.info(
            "portal directory seeded", located=located, seconds=round(time.monotonic() - began, 3)
        )


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
