"""When to try an event again, and how long to wait: exponential backoff with full jitter.

Retrying re-runs the whole event — read, plan, apply — rather than one request, so a
write whose answer was lost is found by the next read instead of being repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)
from tenacity.wait import wait_random_exponential

from app.errors import RateLimited, RetryableError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    max_elapsed_s: float = 120.0
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0


def backoff_wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    """Random exponential wait, but never shorter than a 429's `Retry-After`."""
    jittered = wait_random_exponential(
        multiplier=policy.initial_backoff_s, max=policy.max_backoff_s
    )

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        floor = (
            error.retry_after_s if isinstance(error, RateLimited) and error.retry_after_s else 0.0
        )
        return max(float(jittered(state)), floor)

    return wait


def retrying(policy: RetryPolicy) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type(RetryableError),
        stop=stop_after_attempt(policy.max_attempts) | stop_after_delay(policy.max_elapsed_s),
        wait=backoff_wait(policy),
        reraise=True,
    )
