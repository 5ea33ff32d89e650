"""No rolling second ever holds more than `rate_per_s` Elements requests; the day has a budget.

Clocks: the tests run on looptime's fake loop clock (`@pytest.mark.looptime`), so no test
really sleeps — except the two named `..._on_real_clock`, see below. On the fake clock the
request spacing must be a power-of-two fraction of a second (rate 4/8 with no margin, or
5/s with a 0.25 margin: 0.25 s). With any other spacing — the production 0.21 s, or the
0.2 s of a naive `AsyncLimiter(5, 1)` — aiolimiter leaves a float residue of ~2e-16 in its
bucket and re-arms its wake-up timer at `now + 2e-16`, which rounds to `now`; a real clock
moves on by the next iteration, the fake one never does, so the loop spins forever at one
instant. The production proportions (margin 0.05) and the literal `AsyncLimiter(5, 1)` are
therefore checked on the real clock, kept short (rate 50: 21 ms spacing; 9 grants at 5/s).
`fake_clock` adds a real-time timeout so such a hang fails fast instead of waiting 120 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from functools import partial
from typing import TypeVar

import pytest
from aiolimiter import AsyncLimiter

from app.clients.limiter import ElementsLimiter, request_spacing_s
from app.errors import DailyBudgetExhausted
from app.ticket import Ticket

DAY = date(2025, 3, 1)

Acquire = Callable[[], Awaitable[object]]

LIVE = Ticket(arrived=0.0)
"""A live event's ticket, never handed over (the limiter does not look at arrivals)."""


def live(gate: ElementsLimiter) -> Acquire:
    """`gate.acquire` for a live event."""
    return partial(gate.acquire, LIVE)


def max_in_window(times: list[float], window_s: float) -> int:
    """Most grants in any half-open window [t, t + window_s): grants exactly window_s apart
    are not in one window."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, t in enumerate(ordered):
        while ordered[first] + window_s <= t:
            first += 1
        most = max(most, last - first + 1)
    return most


async def burst(acquire: Acquire, n: int) -> list[float]:
    """Loop times at which `n` concurrent acquirers were granted."""
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        await acquire()
        times.append(loop.time())

    await asyncio.gather(*(one() for _ in range(n)))
    return times


async def one_by_one(acquire: Acquire, n: int) -> list[float]:
    times: list[float] = []
    for _ in range(n):
        times += await burst(acquire, 1)
    return times


# (rate_per_s, margin_s) whose spacing is exact in binary floating point, see above.
FAKE_CLOCK_CONFIGS = [
    pytest.param(4, 0.0, id="4/s-no-margin-edge"),
    pytest.param(5, 0.25, id="5/s-margin-0.25"),
    pytest.param(8, 0.0, id="8/s-no-margin"),
]

T = TypeVar("T")


def fake_clock(test: T) -> T:
    """Run on looptime's fake clock; fail after 10 real seconds instead of spinning."""
    return pytest.mark.timeout(10)(pytest.mark.looptime(test))  # type: ignore[no-any-return]


def limiter(rate: int = 4, margin_s: float = 0.0, **kwargs: object) -> ElementsLimiter:
    options: dict[str, object] = {"daily_limit": 10_000, **kwargs}
    return ElementsLimiter(rate_per_s=rate, margin_s=margin_s, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([], 0),
        ([0.0, 1.0], 1),
        ([0.0, 0.999], 2),
        ([0.0, 0.5, 0.9, 1.4, 1.45], 4),
        ([3.0, 0.0, 0.5], 2),
    ],
    ids=["none", "exactly-1s-apart", "just-under-1s", "sliding", "unsorted"],
)
def test_max_in_window_counts_grants_in_half_open_window(times: list[float], expected: int) -> None:
    assert max_in_window(times, 1.0) == expected


@fake_clock
@pytest.mark.parametrize(("rate", "margin_s"), FAKE_CLOCK_CONFIGS)
async def test_burst_of_30_concurrent_acquirers_never_exceeds_rate_in_any_second(
    rate: int, margin_s: float
) -> None:
    times = await burst(live(limiter(rate, margin_s)), 30)
    assert len(times) == 30
    assert max_in_window(times, 1.0) <= rate


@fake_clock
@pytest.mark.parametrize(("rate", "margin_s"), FAKE_CLOCK_CONFIGS)
async def test_burst_after_idle_spell_never_exceeds_rate_in_any_second(
    rate: int, margin_s: float
) -> None:
    gate = limiter(rate, margin_s)
    times = await one_by_one(live(gate), 3)
    await asyncio.sleep(10)
    times += await burst(live(gate), 30)
    await asyncio.sleep(2.5)
    times += await burst(live(gate), 12)
    assert max_in_window(times, 1.0) <= rate


@fake_clock
async def test_sequential_acquirers_never_exceed_rate_in_any_second() -> None:
    assert max_in_window(await one_by_one(live(limiter(4)), 25), 1.0) <= 4


@fake_clock
async def test_burst_is_spaced_evenly_by_request_spacing() -> None:
    """No slack either: 30 grants at 8/s take exactly 29 spacings."""
    times = await burst(live(limiter(8)), 30)
    assert max(times) - min(times) == 29 * request_spacing_s(8, margin_s=0)


@fake_clock
async def test_naive_aiolimiter_does_violate_the_rolling_window_after_idle() -> None:
    """The property can fail: AsyncLimiter(4, 1) bursts 4 at once, then leaks 3 more in 1 s
    (the same failure as AsyncLimiter(5, 1), which hangs on the fake clock, see above)."""
    naive = AsyncLimiter(4, 1)
    assert max_in_window(await burst(naive.acquire, 30), 1.0) == 7
    await asyncio.sleep(10)
    assert max_in_window(await burst(naive.acquire, 30), 1.0) == 7


@pytest.mark.timeout(10)
async def test_production_margin_never_exceeds_rate_in_any_second_on_real_clock() -> None:
    """Rate 50 with the default 0.05 margin: 21 ms spacing, ~1.2 s of real time."""
    gate = ElementsLimiter(rate_per_s=50, daily_limit=10_000)
    times = await burst(live(gate), 1)
    await asyncio.sleep(0.1)
    times += await burst(live(gate), 55)
    assert max_in_window(times, 1.0) <= 50


@pytest.mark.timeout(10)
async def test_naive_aiolimiter_5_per_s_admits_over_5_in_a_second_on_real_clock() -> None:
    """AsyncLimiter(5, 1) gives 5 at once and 4 more 0.2 s apart: 9 in 0.8 s (real time)."""
    times = await burst(AsyncLimiter(5, 1).acquire, 9)
    assert max_in_window(times, 1.0) > 5


@fake_clock
async def test_a_request_that_goes_out_late_pushes_the_next_one_a_spacing_after_it() -> None:
    gate = limiter(rate=4)
    loop = asyncio.get_running_loop()

    await gate.acquire(LIVE)
    await asyncio.sleep(0.1)  # the first request waited for its connection
    await gate.sent()
    await gate.acquire(LIVE)

    assert loop.time() == pytest.approx(0.1 + 0.25)


@fake_clock
async def test_arrivals_never_exceed_the_rate_when_the_first_request_goes_out_late() -> None:
    gate = limiter(rate=4)
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []

    async def request(index: int) -> None:
        await gate.acquire(LIVE)
        if index == 0:
            await asyncio.sleep(0.1)  # opening the first connection
        await gate.sent()
        arrivals.append(loop.time())

    await asyncio.gather(*(request(i) for i in range(20)))

    assert max_in_window(arrivals, 1.0) <= 4


@fake_clock
async def test_acquire_reports_the_seconds_waited() -> None:
    gate = limiter(4)
    assert [await gate.acquire(LIVE), await gate.acquire(LIVE)] == [0, 0.25]
    assert gate.remaining_today == 10_000 - 2


def test_request_spacing_adds_margin_to_one_second() -> None:
    assert request_spacing_s(5, margin_s=0.05) == pytest.approx(0.21)
    assert request_spacing_s(10, margin_s=0) == pytest.approx(0.1)


class Calendar:
    """An injectable `today` that a test moves forward."""

    def __init__(self) -> None:
        self.day = DAY

    def __call__(self) -> date:
        return self.day

    def next_day(self) -> None:
        self.day += timedelta(days=1)


def budgeted(daily_limit: int) -> tuple[ElementsLimiter, Calendar]:
    calendar = Calendar()
    return limiter(4, daily_limit=daily_limit, today=calendar), calendar


@fake_clock
async def test_daily_budget_raises_after_daily_limit_grants() -> None:
    gate, _ = budgeted(3)
    await one_by_one(live(gate), 3)
    with pytest.raises(DailyBudgetExhausted):
        await gate.acquire(LIVE)
    assert gate.remaining_today == 0


@fake_clock
async def test_remaining_today_counts_down() -> None:
    gate, _ = budgeted(3)
    remaining = [gate.remaining_today]
    for _ in range(3):
        await gate.acquire(LIVE)
        remaining.append(gate.remaining_today)
    assert remaining == [3, 2, 1, 0]


@fake_clock
async def test_daily_budget_resets_on_the_next_date() -> None:
    gate, calendar = budgeted(2)
    await one_by_one(live(gate), 2)
    calendar.next_day()
    assert gate.remaining_today == 2
    await gate.acquire(LIVE)
    assert gate.remaining_today == 1


@fake_clock
async def test_exhaust_spends_the_rest_of_the_day() -> None:
    gate, calendar = budgeted(100)
    await gate.acquire(LIVE)
    gate.exhaust()
    assert gate.remaining_today == 0
    with pytest.raises(DailyBudgetExhausted):
        await gate.acquire(LIVE)
    calendar.next_day()
    assert gate.remaining_today == 100
    await gate.acquire(LIVE)


async def cancel_a_waiter(gate: ElementsLimiter, before_cancel: Callable[[], None]) -> None:
    """Grant one, leave a second acquirer waiting, run `before_cancel`, cancel the waiter."""
    await gate.acquire(LIVE)
    waiting = asyncio.create_task(gate.acquire(LIVE))
    await asyncio.sleep(0)
    before_cancel()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


@fake_clock
async def test_cancelled_acquire_gives_its_budget_back() -> None:
    gate, _ = budgeted(10)
    await cancel_a_waiter(gate, lambda: None)
    assert gate.remaining_today == 9


@fake_clock
async def test_cancelled_waiter_does_not_reopen_an_exhausted_day() -> None:
    gate, _ = budgeted(10)
    await cancel_a_waiter(gate, gate.exhaust)
    assert gate.remaining_today == 0


@fake_clock
async def test_cancelled_waiter_from_yesterday_does_not_raise_todays_budget() -> None:
    gate, calendar = budgeted(10)

    def midnight_passes_and_today_is_counted() -> None:
        calendar.next_day()
        assert gate.remaining_today == 10

    await cancel_a_waiter(gate, midnight_passes_and_today_is_counted)
    assert gate.remaining_today == 10
