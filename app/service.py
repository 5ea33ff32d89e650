"""One input message in, one outcome out: the single place that decides succeed, fail or reject.

Nothing raised by the pipeline escapes `SyncService.handle`: an unusable message is
rejected, a permanent error or exhausted retries fail the event, and both go to the
dead-letter topic. Anything unexpected is a failure too — the worker never dies on data.
The one exception is `HandedOver` (`app.event_stop`): the event's partition went to another
owner and it stopped at a step boundary; it has no outcome here, and passes every
`except Exception` of the ladder on purpose (it is a `BaseException`).

Each event type has one entry point in the pipeline, called the same way; it returns
the event's record (`Synced`), or raises an error that carries the writes made before
it (`SyncError.writes`). The ladder adds those up over every attempt, so a result
lists each Elements write the event made, whichever attempt made it, as its
`operations`: the client's record of a write is the result's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import assert_never

import structlog

from app.clients.limiter import ElementsLimiter
from app.errors import (
    DailyBudgetExhausted,
    InternalError,
    RetryableError,
    StateUnavailable,
    SyncError,
)
from app.events import (
    DEFAULT_MAX_EVENT_BYTES,
    ContractChanged,
    CustomerChanged,
    FormSubmitted,
    InputEvent,
    Operation,
    Rejection,
    ResultData,
    ResultError,
    ResultEvent,
    Status,
    parse_event,
)
from app.pipeline.coalesce import RecentSyncs, ServedBy
from app.pipeline.context import SyncContext, Synced
from app.pipeline.contract import sync_contract
from app.pipeline.customer import sync_customer
from app.pipeline.form import sync_form
from app.retry import retrying
from app.settings import RetrySettings
from app.ticket import Ticket
from app.tracing import note_dossier_number

log = structlog.get_logger(__name__)


async def always_writable() -> None:
    """No durable memory to wait for (the dry run, unit tests)."""


@dataclass(frozen=True)
class Outcome:
    """The result to publish, and why the input also goes to the dead-letter topic (if it does)."""

    result: ResultEvent
    dead_letter_reason: str | None = None
    dead_letter_message: str | None = None


@dataclass
class _Attempts:
    """An event's attempts so far: every write any of them made, and the record of the one
    that succeeded."""

    writes: list[Operation] = field(default_factory=list)
    synced: Synced | None = None
    count: int = 0


class SyncService:
    def __init__(
        self,
        context: SyncContext,
        budget: ElementsLimiter,
        *,
        retry: RetrySettings,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        state_writable: Callable[[], Awaitable[None]] = always_writable,
    ) -> None:
        """`state_writable` returns once the state topic takes writes (see `_run`)."""
        self._context = context
        self._budget = budget
        self._state_writable = state_writable
        self._retry = retry
        self._max_event_bytes = max_event_bytes
        self._recent = RecentSyncs()

    async def _run(
        self, event: InputEvent, attempts: _Attempts, arrived: float, context: SyncContext
    ) -> None:
        """Retry transient failures; wait (without failing) while the daily budget is spent
        or the state topic takes no record: neither is the event's fault, and intake pauses
        meanwhile."""
        while True:
            try:
                async for attempt in retrying(self._retry, context.event):
                    with attempt:
                        await self._attempt(event, attempts, arrived, context)
                return
            except StateUnavailable:
                log.warning("the state topic takes no record; waiting for it", event_id=event.id)
                with context.event.waiting("the state topic to take records"):
                    await self._state_writable()
            except DailyBudgetExhausted as error:
                log.warning(
                    "no Elements budget left for this event today; waiting for it to reset",
                    event_id=event.id,
                    reason=str(error),
                )
                await self._budget.wait_for_budget(context.event)

    async def handle(
        self,
        raw: bytes | None,
        *,
        key: str | None = None,
        arrived: float | None = None,
        ticket: Ticket | None = None,
    ) -> Outcome:
        """The outcome of one message; never raises, whatever the message holds — but for
        `HandedOver`, when the event stopped for its partition's next owner.

        `arrived` is when the consumer took the message (event-loop time; now when None);
        `ticket` is the one the consumer made for it (`app.ticket`). Without one (the
        sandbox's core, tests) the message is processed as work outside an event.
        """
        started = time.monotonic()
        try:
            context = self._context if ticket is None else self._context.for_event(ticket)
            if arrived is None:
                arrived = asyncio.get_running_loop().time()
            return await self._handle(raw, key, started, arrived, context)
        except Exception as error:
            log.exception("no outcome could be decided; failing the message", key=key)
            return self._unexpected(error, key, started)

    async def _handle(
        self,
        raw: bytes | None,
        key: str | None,
        started: float,
        arrived: float,
        context: SyncContext,
    ) -> Outcome:
        parsed = parse_event(raw, max_bytes=self._max_event_bytes)
        if isinstance(parsed, Rejection):
            return self._rejected(parsed, key, started)
        attempts = _Attempts()
        dossier_number = getattr(parsed.data, "dossierNumber", None)
        note_dossier_number(dossier_number)
        with structlog.contextvars.bound_contextvars(
            event_id=parsed.id, event_type=parsed.type, dossier_number=dossier_number
        ):
            try:
                await self._run(parsed, attempts, arrived, context)
            except InternalError as error:  # a bug, made one by the pipeline to carry its writes
                log.exception("event failed unexpectedly")
                return self._failed(parsed, attempts, error, key, started)
            except SyncError as error:
                log.warning("event failed", error_code=error.code, error=str(error))
                return self._failed(parsed, attempts, error, key, started)
            except Exception as error:
                log.exception("event failed unexpectedly")
                internal = InternalError.caused_by(error)
                return self._failed(parsed, attempts, internal, key, started)
            log.info(
                "event synced",
                dossier_id=attempts.synced.dossier_id if attempts.synced else None,
                writes=len(attempts.writes),
            )
        return Outcome(self._result(parsed, "succeeded", attempts, key, started))

    async def _attempt(
        self, event: InputEvent, attempts: _Attempts, arrived: float, context: SyncContext
    ) -> None:
        """One attempt; its writes count whether it succeeds or not."""
        attempts.count += 1
        try:
            synced = await self._sync_by_type(event, arrived, context)
        except SyncError as error:
            attempts.writes += error.writes
            raise
        attempts.writes += synced.writes
        attempts.synced = synced

    async def _sync_by_type(
        self, event: InputEvent, arrived: float, context: SyncContext
    ) -> Synced:
        """The event type's entry point, one call each."""
        data = event.data
        match data:
            case CustomerChanged():
                return await self._customer(event.id, data, arrived, context)
            case ContractChanged():
                return await sync_contract(context, data)
            case FormSubmitted():
                return await sync_form(context, data)
            case _:
                assert_never(data)

    async def _customer(
        self, event_id: str, data: CustomerChanged, arrived: float, context: SyncContext
    ) -> Synced:
        """Served by a sync of the dossier that started after this event arrived and followed
        the same `portalCustomerId` hint, or synced."""
        number, hint = data.dossierNumber, data.portalCustomerId
        if (served := self._recent.serving(number, arrived, hint)) is not None:
            log.info("served by the sync of an event queued before it", served_by=served.event_id)
            return Synced(served.dossier_id, served_by=served.event_id)
        fresh_after = context.event.arrived
        synced = await sync_customer(context, data)
        self._recent.note(number, ServedBy(event_id, synced.dossier_id, fresh_after, hint))
        return synced

    def _result(
        self,
        event: InputEvent,
        status: Status,
        attempts: _Attempts,
        key: str | None,
        started: float,
        error: SyncError | None = None,
    ) -> ResultEvent:
        synced = attempts.synced
        ignored = synced.ignored_fields if synced else None
        return ResultEvent(
            subject=key,
            data=ResultData(
                eventId=event.id,
                eventType=event.type,
                status=status,
                dossierId=synced.dossier_id if synced else None,
                operations=list(attempts.writes),
                error=_result_error(error) if error else None,
                attempts=max(attempts.count, 1),
                durationMs=_ms_since(started),
                ignoredFields=list(ignored) if ignored is not None else None,
                servedBy=synced.served_by if synced else None,
            ),
        )

    def _failed(
        self,
        event: InputEvent,
        attempts: _Attempts,
        error: SyncError,
        key: str | None,
        started: float,
    ) -> Outcome:
        result = self._result(event, "failed", attempts, key, started, error)
        return Outcome(result, dead_letter_reason=error.code, dead_letter_message=str(error))

    @staticmethod
    def _rejected(rejection: Rejection, key: str | None, started: float) -> Outcome:
        log.warning(
            "event rejected",
            reason=rejection.reason,
            detail=rejection.message,
            key=key,
            event_id=rejection.event_id,
        )
        result = ResultEvent(
            subject=key,
            data=ResultData(
                eventId=rejection.event_id,
                eventType=rejection.event_type,
                status="rejected",
                error=ResultError(
                    code=rejection.reason, message=rejection.message, retryable=False
                ),
                attempts=1,
                durationMs=_ms_since(started),
            ),
        )
        return Outcome(
            result, dead_letter_reason=rejection.reason, dead_letter_message=rejection.message
        )

    @staticmethod
    def _unexpected(error: Exception, key: str | None, started: float) -> Outcome:
        """A bug of ours before the event could be read: failed, and the bytes kept."""
        internal = InternalError.caused_by(error)
        result = ResultEvent(
            subject=key,
            data=ResultData(
                eventId=None,
                eventType=None,
                status="failed",
                error=_result_error(internal),
                durationMs=_ms_since(started),
            ),
        )
        return Outcome(result, dead_letter_reason=internal.code, dead_letter_message=str(internal))


def _result_error(error: SyncError) -> ResultError:
    return ResultError(
        code=error.code, message=str(error), retryable=isinstance(error, RetryableError)
    )


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
