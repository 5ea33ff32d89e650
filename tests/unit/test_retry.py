"""The one retry factory (`app.retry.retrying_on`) and the event retry built on it.

Nothing sleeps: the factory's loops sleep through a recorder, the event retry runs on
looptime's fake clock.
"""

from __future__ import annotations

import pytest
from tenacity import AsyncRetrying, RetryCallState, RetryError
from tenacity.wait import wait_fixed

from app.errors import DailyBudgetExhausted, RateLimited
from app.retry import retrying, retrying_on
from app.settings import RetrySettings
from app.ticket import Ticket
from tests.unit.test_limiter import fake_clock


class Flaky(Exception):
    """An error the tests' loops treat as worth another attempt."""


class Broken(Exception):
    """An error the tests' loops do not retry."""


class Sleeps:
    """A sleep that returns at once and keeps the seconds it was asked to sleep."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


class Call:
    """Raises `errors` in turn, then succeeds; counts the attempts."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = errors
        self.attempts = 0

    async def __call__(self) -> None:
        self.attempts += 1
        if self.attempts <= len(self.errors):
            raise self.errors[self.attempts - 1]


async def run(loop: AsyncRetrying, call: Call) -> None:
    async for attempt in loop:
        with attempt:
            await call()


def is_flaky(error: BaseException) -> bool:
    return isinstance(error, Flaky)


async def test_errors_the_predicate_accepts_are_retried_until_the_call_succeeds() -> None:
    call = Call(Flaky(), Flaky())

    await run(retrying_on(is_flaky, wait=wait_fixed(0), stop=5, sleep=Sleeps()), call)

    assert call.attempts == 3


async def test_an_error_the_predicate_rejects_is_raised_at_once() -> None:
    broken = Broken()
    call = Call(broken)
    sleeps = Sleeps()

    with pytest.raises(Broken) as raised:
        await run(retrying_on(is_flaky, wait=wait_fixed(1), sleep=sleeps), call)

    assert raised.value is broken
    assert call.attempts == 1
    assert sleeps.seconds == []


async def test_exception_classes_retry_those_classes_and_raise_any_other_error_at_once() -> None:
    call = Call(Flaky(), ConnectionError(), Broken())

    with pytest.raises(Broken):
        await run(retrying_on((Flaky, OSError), wait=wait_fixed(0), sleep=Sleeps()), call)

    assert call.attempts == 3


async def test_the_last_attempt_raises_its_own_error_rather_than_a_retry_error() -> None:
    last = Flaky("third")
    call = Call(Flaky("first"), Flaky("second"), last, Flaky("never made"))

    with pytest.raises(Flaky) as raised:
        await run(retrying_on(Flaky, wait=wait_fixed(0), stop=3, sleep=Sleeps()), call)

    assert raised.value is last
    assert not isinstance(raised.value, RetryError)
    assert call.attempts == 3


async def test_a_stop_condition_of_tenacitys_ends_the_retries() -> None:
    def after_two(state: RetryCallState) -> bool:
        return state.attempt_number >= 2

    call = Call(Flaky("first"), Flaky("second"), Flaky("third"))

    with pytest.raises(Flaky, match="second"):
        await run(retrying_on(Flaky, wait=wait_fixed(0), stop=after_two, sleep=Sleeps()), call)

    assert call.attempts == 2


async def test_on_retry_gets_each_retried_error_and_its_attempt_number_but_not_the_last() -> None:
    errors = (Flaky("first"), Flaky("second"), Flaky("third"))
    told: list[tuple[BaseException, int]] = []
    loop = retrying_on(
        Flaky,
        wait=wait_fixed(0),
        stop=3,
        on_retry=lambda error, number: told.append((error, number)),
        sleep=Sleeps(),
    )

    with pytest.raises(Flaky):
        await run(loop, Call(*errors))

    assert told == [(errors[0], 1), (errors[1], 2)]


async def test_without_a_stop_it_retries_for_as_long_as_the_errors_are_worth_it() -> None:
    call = Call(*[Flaky() for _ in range(50)])

    await run(retrying_on(Flaky, wait=wait_fixed(0), sleep=Sleeps()), call)

    assert call.attempts == 51


async def test_each_wait_is_slept_through_the_given_sleep() -> None:
    sleeps = Sleeps()

    await run(retrying_on(Flaky, wait=wait_fixed(2.5), sleep=sleeps), Call(Flaky(), Flaky()))

    assert sleeps.seconds == [2.5, 2.5]


async def test_the_event_retry_raises_a_spent_budget_at_once() -> None:
    """The event waits for the budget instead (`app.service`)."""
    call = Call(DailyBudgetExhausted("spent"))

    with pytest.raises(DailyBudgetExhausted):
        await run(retrying(RetrySettings(), Ticket.outside_event()), call)

    assert call.attempts == 1


@fake_clock
async def test_the_event_retry_raises_the_last_retryable_error_after_max_attempts() -> None:
    call = Call(*[RateLimited(f"attempt {number}") for number in range(1, 6)])

    with pytest.raises(RateLimited, match="attempt 3"):
        await run(retrying(RetrySettings(max_attempts=3), Ticket.outside_event()), call)

    assert call.attempts == 3
