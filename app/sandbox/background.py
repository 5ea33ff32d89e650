"""A benchmark's helper that works in the background while the `async with` block runs."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self


class InBackground:
    """Starts `run()` on entering the block and cancels it on leaving."""

    _task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self.run())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
