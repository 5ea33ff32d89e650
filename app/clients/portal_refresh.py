"""Keeping the portal directory's index: the first build at start, then a paced rebuild
every `PORTAL_INDEX_TTL_S`, and the full read of the listing a lookup may wait on.

The listing is read from its end back to page 1 (see `PortalIndexBuilder.build`); each
read is numbered and counted by the directory's page reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from app.clients.portal_index import PageRead, PageReadPurpose, PortalIndex, Sightings

log = structlog.get_logger(__name__)

ReadPage = Callable[[int, PageReadPurpose], Awaitable[PageRead]]
INDEX_RETRY_S = 30.0
"""How long after a failed background build the next is tried."""


async def _no_pause() -> None:
    return None


class PortalIndexBuilder:
    """Builds the index in place (`build`, `first_index`) and, once started, keeps it fresh
    in the background (`start`, `stop`)."""

    def __init__(
        self,
        index: PortalIndex,
        read: ReadPage,
        *,
        ttl_s: float,
        refresh_pages_per_s: float,
        retry_s: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._index = index
        self._read = read
        self._ttl_s = ttl_s
        self._refresh_interval_s = 1 / refresh_pages_per_s
        self._retry_s = retry_s
        self._sleep = sleep
        self._first_build: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None

    async def first_index(self) -> None:
        """Wait for the first complete index, starting its build if none runs (a failed
        build fails its waiters, who retry as for any upstream error)."""
        build = self._first_build
        if build is None or (build.done() and (build.cancelled() or build.exception())):
            build = self._first_build = asyncio.create_task(
                self.build(paced=False, purpose="refresh")
            )
        await asyncio.shield(build)

    async def build(self, *, paced: bool, purpose: PageReadPurpose) -> None:
        """Read the whole listing, from its end back to page 1, into a new index.

        Backwards, because a deletion moves every later customer a place forward: behind
        a backward read that lands on pages it has yet to read (seen twice at worst, the
        later, lower page winning), where behind a forward read it would pass a customer
        over. A build that runs for events (the first, a full read) is not paced; a
        background rebuild is paced at `refresh_pages_per_s`, so it never competes with
        events for the portal.
        """
        started = self._index.sequence
        pause = self._pause if paced else _no_pause
        end = await self._listing_end(pause, purpose)
        index = Sightings()
        if end is not None:
            index.learn_read(end)
            for number in range(end.page.number - 1, 0, -1):
                await pause()
                index.learn_read(await self._read(number, purpose))
        self._index.put_in_place(index, end.page.number if end else 0, started)

    async def _pause(self) -> None:
        await self._sleep(self._refresh_interval_s)

    async def _listing_end(
        self, pause: Callable[[], Awaitable[None]], purpose: PageReadPurpose
    ) -> PageRead | None:
        """The listing's last page (None when it is empty), found from the highest page
        seen: forward in doubling steps while pages have a next, back in doubling steps
        while they are empty, then halving between the two. The spec gives no page count;
        a page past the end is empty. In steady state this is one read."""
        number, step = max(self._index.last_page, 1), 1
        below: PageRead | None = None  # the highest page read that has more after it
        above: int | None = None  # the lowest page read that is past the end
        while True:
            read = await self._read(number, purpose)
            if read.page.has_next:
                below = read
            elif read.page.customers:
                return read
            else:
                above = number
            low = below.page.number if below is not None else 0
            if above is None:
                number = low + step
            elif below is None and above > 1:
                number = max(above - step, 1)
            elif above - low <= 1:
                return below  # the listing shrank between two reads: end at the last one
            else:
                number = (low + above) // 2
            step *= 2
            await pause()

    async def _keep_fresh(self) -> None:
        """The first index at once, then a paced rebuild every `ttl_s`; a failed build is
        retried after `retry_s` (lookups keep using the index they have)."""
        while True:
            try:
                if self._index.indexed:
                    await self.build(paced=True, purpose="refresh")
                else:
                    await self.first_index()
            except Exception as error:
                log.warning("portal index build failed; retrying", error=str(error))
                await self._sleep(self._retry_s)
                continue
            await self._sleep(self._ttl_s)

    def start(self) -> None:
        if self._refresher is None:
            self._refresher = asyncio.create_task(self._keep_fresh())

    async def stop(self) -> None:
        for task in (self._refresher, self._first_build):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._refresher = None
