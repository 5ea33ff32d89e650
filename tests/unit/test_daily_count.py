"""The day's Elements count is saved ahead in blocks, so a restart never starts below it."""

from __future__ import annotations

import asyncio
from datetime import date

from app.state.daily_count import DailyCount, DailyCountKeeper

DAY = date(2026, 11, 23)


async def counted(keeper: DailyCountKeeper, used: range, day: date = DAY) -> None:
    for n in used:
        keeper.on_count(day, n)
        await asyncio.sleep(0)
    await keeper.flush()


async def test_the_saved_count_is_always_ahead_of_the_true_count() -> None:
    saved: list[DailyCount] = []

    async def save(count: DailyCount) -> None:
        saved.append(count)

    keeper = DailyCountKeeper(save, block=10)
    for n in range(1, 101):
        keeper.on_count(DAY, n)
        await asyncio.sleep(0)
        assert saved and saved[-1].used >= n
    assert len(saved) < 25, "the count is saved in blocks, not per request"


async def test_a_restored_count_is_where_saving_continues_and_a_new_day_starts_afresh() -> None:
    saved: list[DailyCount] = []

    async def save(count: DailyCount) -> None:
        saved.append(count)

    keeper = DailyCountKeeper(save, block=10)
    keeper.restored(DailyCount(day=DAY, used=200))
    await counted(keeper, range(191, 193))
    await counted(keeper, range(1, 2), day=date(2026, 11, 24))

    assert [(c.day, c.used) for c in saved] == [(date(2026, 11, 24), 11)]


def test_an_unreadable_saved_count_is_ignored() -> None:
    assert DailyCountKeeper.read(b"{not json") is None
    assert DailyCountKeeper.read(b'{"day": "2026-11-23", "used": 7}') == DailyCount(day=DAY, used=7)
