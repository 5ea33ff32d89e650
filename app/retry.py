"""When to try an event again, and how long to wait: exponential backoff with full jitter.

Retrying re-runs the whole event — read, plan, apply — rather than one request, so a
write whose answer was lost is found by the next read instead of being repeated.
An unreachable upstream is retried for up to `max_outage_s` (an outage of minutes
must not fail events in bulk); other transient errors for `max_attempts`. A spent
daily budget is not retried here at all: the event waits for the budget instead.
The backoff between attempts ends when the event is handed over (`Ticket.pause`, the
event's ticket given to `retrying`): it holds no request, so the partition's next owner
need not wait for it.
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
)
from tenacity.wait import wait_random_exponential

from app.errors import DailyBudgetExhausted, RetryableError, UpstreamUnavailable
from app.settings import RetrySettings
from app.ticket import Ticket


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


def retrying(policy: RetrySettings, ticket: Ticket) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type(RetryableError)
        & retry_if_not_exception_type(DailyBudgetExhausted),
        stop=should_stop(policy),
        wait=backoff_wait(policy),
        sleep=ticket.pause,
        reraise=True,
    )
