"""report: a message's outcome to Kafka — its result and, when it failed or was rejected, its dead letter.

The worker releases a message's offset only after `deliver` returns, so `deliver` must
return for every message and publish exactly one result. Transient Kafka errors are
retried with backoff until Kafka takes the message. A message Kafka can never take
(larger than the topic allows, headers that cannot be encoded, a bug while building it)
is replaced by a smaller form that still says what happened: a dead letter without the
input's own headers, then one whose value is cut; a result without its operations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, get_args

import structlog
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError
from faststream.kafka import KafkaBroker

from app.events import CLOUDEVENTS_JSON, ResultEvent
from app.metrics import Metrics
from app.retry import exponential_backoff, retrying_on
from app.service import Outcome
from app.settings import RetrySettings, TopicSettings
from app.tracing import trace_headers

log = structlog.get_logger(__name__)

FinishStep = Literal["result", "dead_letter", "commit"]
DEAD_LETTER_CUT_BYTES = 64 * 1024
"""What a dead letter keeps of an input too large for the dead-letter topic."""
MAX_HEADER_MESSAGE_CHARS = 1000

Publish = Callable[[], Awaitable[Any]]


def kafka_error_is_transient(error: BaseException) -> bool:
    """Worth sending the same message again: a Kafka error other than "too large"."""
    return isinstance(error, KafkaError) and not isinstance(
        error, MessageSizeTooLargeError | RecordTooLargeError
    )


def header_text(headers: Sequence[tuple[str | bytes, bytes | None]]) -> dict[str, str]:
    """Kafka headers as text: aiokafka gives `str` keys, values may be `None` or not UTF-8."""
    return {
        (key.decode("utf-8", "replace") if isinstance(key, bytes) else key): (
            value.decode("utf-8", "replace") if value is not None else ""
        )
        for key, value in headers
    }


class OutcomePublisher:
    """Owns the result and dead-letter publishers (and so their AsyncAPI description)."""

    def __init__(
        self, broker: KafkaBroker, topics: TopicSettings, metrics: Metrics, *, retry: RetrySettings
    ) -> None:
        self._metrics = metrics
        for step in get_args(FinishStep):  # at zero from the start, for the alert rules' rate()
            metrics.finish_failures.labels(step)
        self._retry = retry
        self._results = broker.publisher(
            topics.results,
            title="elements-sync results",
            description="One elements.sync.result CloudEvent per input message, keyed like it.",
            schema=ResultEvent,
        )
        self._dead_letters = broker.publisher(
            topics.dead_letter,
            title="elements-sync dead letters",
            description=(
                "The original bytes of inputs that failed or were rejected; headers "
                "x-dead-letter-reason, x-dead-letter-message, x-original-topic/partition/offset "
                "(and x-dead-letter-truncated with the original size when only a cut fitted)."
            ),
            schema=bytes,
        )

    def failed(self, step: FinishStep, error: BaseException) -> None:
        """A step of finishing a message went wrong: logged (with the bound event id) and counted."""
        self._metrics.finish_failures.labels(step).inc()
        log.warning("finishing a message failed", step=step, error=type(error).__name__)

    async def deliver(self, record: ConsumerRecord[Any, Any], outcome: Outcome) -> None:
        """Returns once Kafka acknowledged the dead letter (if any) and then the result.

        Both carry the `traceparent` of the current span (the message's), so a consumer of
        results continues the input's trace.
        """
        trace = trace_headers()
        if outcome.dead_letter_reason is not None:
            await self._first_taken("dead_letter", self._dead_letter_forms(record, outcome, trace))
            self._metrics.dead_letters.labels(outcome.dead_letter_reason).inc()
        await self._first_taken("result", self._result_forms(record, outcome, trace))

    async def _first_taken(self, step: FinishStep, forms: list[Publish]) -> None:
        """Publish the first form Kafka takes; the last form is retried whatever the error."""
        for index, publish in enumerate(forms):
            last = index == len(forms) - 1
            try:
                await self._until_acknowledged(step, publish, retry_any_error=last)
                return
            except Exception as error:
                self.failed(step, error)

    async def _until_acknowledged(
        self, step: FinishStep, publish: Publish, *, retry_any_error: bool
    ) -> None:
        def worth_retrying(error: BaseException) -> bool:
            return isinstance(error, Exception) and (
                retry_any_error or kafka_error_is_transient(error)
            )

        async for attempt in retrying_on(
            worth_retrying,
            wait=exponential_backoff(self._retry),
            on_retry=lambda error, _: self.failed(step, error),
        ):
            with attempt:
                await publish()

    def _result_forms(
        self, record: ConsumerRecord[Any, Any], outcome: Outcome, trace: dict[str, str]
    ) -> list[Publish]:
        headers = {"content-type": CLOUDEVENTS_JSON, **trace}

        def publish(result: ResultEvent) -> Publish:
            return lambda: self._results.publish(result.to_bytes(), key=record.key, headers=headers)

        full = outcome.result
        bare = full.model_copy(update={"data": full.data.model_copy(update={"operations": []})})
        return [publish(full), publish(bare)]

    def _dead_letter_forms(
        self, record: ConsumerRecord[Any, Any], outcome: Outcome, trace: dict[str, str]
    ) -> list[Publish]:
        value: bytes = record.value or b""
        own = {
            **trace,
            "x-dead-letter-reason": outcome.dead_letter_reason or "",
            "x-dead-letter-message": (outcome.dead_letter_message or "")[:MAX_HEADER_MESSAGE_CHARS],
            "x-original-topic": record.topic,
            "x-original-partition": str(record.partition),
            "x-original-offset": str(record.offset),
            "x-event-id": outcome.result.data.eventId or "",
        }

        def publish(body: bytes, headers: Callable[[], dict[str, str]]) -> Publish:
            return lambda: self._dead_letters.publish(body, key=record.key, headers=headers())

        cut = {**own, "x-dead-letter-truncated": str(len(value))}
        return [
            publish(value, lambda: {**header_text(record.headers or ()), **own}),
            publish(value, lambda: own),
            publish(value[:DEAD_LETTER_CUT_BYTES], lambda: cut),
        ]
