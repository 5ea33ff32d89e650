"""`arrived_at`: the event's arrival inside an event, now outside one."""

from __future__ import annotations

import asyncio

from app.clients.freshness import EVENT_ARRIVED, arrived_at


async def test_inside_an_event_its_arrival_is_given() -> None:
    async def in_event() -> float:
        EVENT_ARRIVED.set(12.5)
        return arrived_at()

    assert await asyncio.create_task(in_event()) == 12.5


async def test_outside_an_event_now_is_given() -> None:
    before = asyncio.get_running_loop().time()

    assert before <= arrived_at() <= asyncio.get_running_loop().time()
