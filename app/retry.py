"""When to try an event again, and how long to wait: exponential backoff with full jitter.

Retrying re-runs the whole event — read, plan, apply — rather than one request, so a
write whose answer was lost is found by the next read instead of being repeated.
An unreachable upstream is retried for up to `max_outage_s` (an outage of minutes
must not fail events in bulk); other transient errors for `max_attempts`. A spent
daily budget is not retried here at all: the event waits for the budget instead.
The backoff between attempts ends when the event is handed over (`Ticket.pause`, the
event's ticket given to `retrying`): it holds no request, so the partition's next owner
need not wait for it.

Every other retry loop of the service (Kafka writes and commits, Redis, connecting to
Kafka) is built by `retrying_on` too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
)
from tenacity.stop import StopBaseT
from tenacity.wait import WaitBaseT, wait_random_exponential

from app.errors import DailyBudgetExhausted, RetryableError, SyncError, UpstreamUnavailable
from app.settings import RetrySettings
from app.ticket import Ticket

RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
"""The errors worth another attempt: exception classes, or a predicate on the error."""
OnRetry = Callable[[BaseException, int], None]
"""Told of a failed attempt that will be retried: its error and its number (1 for the first)."""


def retrying_on(
    retry_on: RetryOn,
    *,
    wait: WaitBaseT,
    stop: int | StopBaseT | None = None,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncRetrying:
    """The service's one way to build a retry loop, so that every loop fails the same way.

    An error `retry_on` does not accept, and the last error once `stop` gives up, reach the
    caller as raised: callers handle the errors they know, never tenacity's `RetryError`.
    `stop` is a number of attempts or a condition of tenacity's; without one the loop
    retries for as long as the errors are worth it (a dependency that is down is waited
    for). `on_retry` sees the error itself, so callers need not dig it out of tenacity's
    state to count or log it.
    """

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if on_retry is not None and error is not None:
            on_retry(error, state.attempt_number)

    if stop is None:
        stop = stop_never
    elif isinstance(stop, int):
        stop = stop_after_attempt(stop)
    return AsyncRetrying(
        retry=(
            retry_if_exception_type(retry_on)
            if isinstance(retry_on, type | tuple)
            else retry_if_exception(retry_on)
        ),
        stop=stop,
        wait=wait,
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )


def exponential_backoff(policy: RetrySettings) -> wait_random_exponential:
    """The one backoff of the service (events, Kafka writes and commits, connecting to
    Kafka): exponential from `initial_backoff_s` up to `max_backoff_s`, with full jitter."""
    return wait_random_exponential(multiplier=policy.initial_backoff_s, max=policy.max_backoff_s)


def backoff_wait(policy: RetrySettings) -> Callable[[RetryCallState], float]:
    """Random exponential wait, but never shorter than a 429's `Retry-After`."""
    jittered = exponential_backoff(policy)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        floor = (
            error.retry_after_s
            if isinstance(error, RetryableError) and error.retry_after_s
            else 0.0
        )
        return max(float(jittered(state)), floor)

    return wait


def should_stop(policy: RetrySettings) -> Callable[[RetryCallState], bool]:
    def stop(state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        elapsed_s = state.seconds_since_start or 0.0
        if isinstance(error, UpstreamUnavailable):
            return elapsed_s >= policy.max_outage_s
        return state.attempt_number >= policy.max_attempts or elapsed_s >= policy.max_elapsed_s

    return stop


def _worth_retrying_event(error: BaseException) -> bool:
    """A retryable error, but not a spent daily budget: the event waits for the budget."""
    return isinstance(error, RetryableError) and not isinstance(error, DailyBudgetExhausted)


@dataclass
class _Backoff:
    """An event's backoff between attempts: a wait its handover ends, said on its ticket
    with the error it follows (`app.progress`)."""

    ticket: Ticket
    after: str = "an error"

    def failed(self, error: BaseException, attempt: int) -> None:
        self.after = error.code if isinstance(error, SyncError) else type(error).__name__

    async def pause(self, seconds: float) -> None:
        with self.ticket.waiting(f"a retry backoff of {seconds:.1f} s after {self.after}"):
            await self.ticket.pause(seconds)


def retrying(policy: RetrySettings, ticket: Ticket) -> AsyncRetrying:
    backoff = _Backoff(ticket)
    return retrying_on(
        _worth_retrying_event,
        wait=backoff_wait(policy),
        stop=should_stop(policy),
        on_retry=backoff.failed,
        sleep=backoff.pause,
    )
