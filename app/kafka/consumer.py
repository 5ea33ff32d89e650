"""consume → (service) → report: the Kafka side of the pipeline.

Offsets are committed by hand (`AckPolicy.MANUAL`): FastStream's default commits
before the handler runs. A message's offset becomes committable only after its
result — and, for failures, its dead-letter copy — is acknowledged by Kafka.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from app.kafka.keyed import KeyedDispatcher
from app.kafka.offsets import OffsetTracker
from app.kafka.publisher import (
    CLOUDEVENTS_JSON,
    OutcomePublisher,
    header_text,
    kafka_error_is_transient,
    publish_backoff,
)
from app.metrics import Metrics
from app.service import Outcome, SyncService
from app.settings import Settings

log = structlog.get_logger(__name__)

FLOW_CHECK_INTERVAL_S = 0.5
COMMIT_ATTEMPTS = 5


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value is not None else None


async def _tolerant_parser(
    record: ConsumerRecord[Any, Any],
    original: Callable[[ConsumerRecord[Any, Any]], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    """FastStream's parser decodes every header value as UTF-8 (`None` or other bytes
    would raise before our handler runs, leaving the message without a result): give it
    text-safe copies, and keep the untouched record as the raw message."""
    safe = [(k, v.encode()) for k, v in header_text(record.headers or ()).items()]
    message = await original(dataclasses.replace(record, headers=safe))
    message.raw_message = record
    return message


async def _undecoded(message: StreamMessage[Any]) -> bytes:
    """The body as sent: FastStream would parse JSON by content type, and raise on bad JSON."""
    body: bytes = message.body
    return body


class Worker:
    def __init__(
        self,
        broker: KafkaBroker,
        service: SyncService,
        settings: Settings,
        metrics: Metrics,
        *,
        pause_reason: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._broker = broker
        self._service = service
        self._settings = settings
        self._dispatcher = KeyedDispatcher(max_in_flight=settings.kafka.max_in_flight)
        self._offsets = OffsetTracker()
        self._commit_lock = asyncio.Lock()
        self._stopping = False
        self._metrics = metrics
        self._external_pause_reason = pause_reason
        self._paused_for: str | None = None
        self._flow_task: asyncio.Task[None] | None = None
        self.assigned: set[TopicPartition] = set()
        self._register()

    def _register(self) -> None:
        """The input subscriber and the output publishers (which also make the AsyncAPI document)."""
        kafka = self._settings.kafka
        topics = self._settings.topics
        self._outcomes = OutcomePublisher(self._broker, topics, self._metrics)
        self._forms = self._broker.publisher(
            topics.form_submissions,
            title="elements-sync form submissions",
            description="form.submitted CloudEvents written by the HTTP ingress, keyed by customer id.",
        )
        self._subscriber = self._broker.subscriber(
            *self._settings.topics.inputs,
            group_id=kafka.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=kafka.heartbeat_interval_ms,
            listener=_Rebalance(self),
            parser=_tolerant_parser,
            decoder=_undecoded,
            title="elements-sync inputs",
            description=(
                "CloudEvents 1.0 (structured JSON) of type customer.changed, contract.changed or "
                "form.submitted, keyed by dossier number (forms: by portal customer id). "
                "Every message gets exactly one result."
            ),
        )
        self._subscriber(self.on_message)

    @property
    def consuming(self) -> bool:
        return self._subscriber.running and not self._stopping

    async def publish_form(self, customer_id: str, event: bytes) -> None:
        """The forms ingress's publisher: returns once Kafka acknowledged the event."""
        await self._forms.publish(
            event, key=customer_id.encode(), headers={"content-type": CLOUDEVENTS_JSON}
        )

    async def on_message(self, msg: KafkaMessage) -> None:
        """Schedule the message behind earlier ones with its key; returns without waiting for it."""
        record: ConsumerRecord[Any, Any] = msg.raw_message
        if self._stopping:
            return
        partition = TopicPartition(record.topic, record.partition)
        self._offsets.start(partition, record.offset)
        await self._dispatcher.submit(record.key, lambda: self._process(record, partition))
        self._apply_flow()

    def _count(self, outcome: Outcome) -> None:
        data = outcome.result.data
        kind = data.eventType or "unknown"
        self._metrics.events.labels(kind, data.status).inc()
        self._metrics.processing.labels(kind).observe(data.durationMs / 1000)

    # flow control: stop fetching (without leaving the group) while work cannot proceed

    @property
    def paused_for(self) -> str | None:
        return self._paused_for

    def pause_reason(self) -> str | None:
        if self._dispatcher.in_flight >= self._settings.kafka.max_in_flight:
            return "backlog"
        return self._external_pause_reason()

    def _live_consumer(self) -> AIOKafkaConsumer | None:
        consumer = self._subscriber.consumer
        return consumer if isinstance(consumer, AIOKafkaConsumer) else None

    def _apply_flow(self) -> None:
        """Pause every assigned partition while there is a reason, resume when there is none.

        Pausing keeps the consumer polling and in its group, which a handler blocked for
        hours (a spent daily budget) would not: it would be evicted after max.poll.interval.
        """
        consumer = self._live_consumer()
        reason = None if self._stopping else self.pause_reason()
        if consumer is None or reason == self._paused_for:
            return
        partitions = consumer.assignment()
        if reason is not None:
            consumer.pause(*partitions)
            log.warning("intake paused", reason=reason)
        else:
            consumer.resume(*partitions)
            log.info("intake resumed", was=self._paused_for)
        for label in ("backlog", "daily_budget", "upstream_outage"):
            self._metrics.intake_paused.labels(label).set(1 if label == reason else 0)
        self._paused_for = reason

    async def _observe_lag(self) -> None:
        """Messages behind the partition end: not yet fetched, plus fetched but unfinished."""
        consumer = self._live_consumer()
        if consumer is None:
            return
        for partition in consumer.assignment():
            highwater = consumer.highwater(partition)
            if highwater is None:
                continue
            try:
                fetched = await consumer.position(partition)
            except KafkaError:
                continue
            lag = max(highwater - fetched, 0) + self._offsets.pending(partition)
            self._metrics.consumer_lag.labels(partition.topic, str(partition.partition)).set(lag)

    async def _watch_flow(self) -> None:
        while not self._stopping:
            try:
                self._apply_flow()
                await self._observe_lag()
            except Exception:
                log.exception("flow control check failed")
            await asyncio.sleep(FLOW_CHECK_INTERVAL_S)

    def start_flow_control(self) -> None:
        self._flow_task = asyncio.create_task(self._watch_flow())

    async def _process(self, record: ConsumerRecord[Any, Any], partition: TopicPartition) -> None:
        """Outcome, then result (and dead letter), then the offset — for every message.

        `handle` never raises and `deliver` returns only once Kafka took the result, so
        the offset is released after every message; only a cancelled drain leaves it
        uncommitted, and then the message is redelivered.
        """
        key = _text(record.key)
        with structlog.contextvars.bound_contextvars(
            key=key, topic=record.topic, offset=record.offset
        ):
            outcome = await self._service.handle(record.value, key=key)
            with structlog.contextvars.bound_contextvars(event_id=outcome.result.data.eventId):
                await self._outcomes.deliver(record, outcome)
                try:
                    self._count(outcome)
                    self._apply_flow()
                except Exception:
                    log.exception("metrics or flow control failed after a result")
                await self._release(partition, record.offset)

    async def _release(self, partition: TopicPartition, offset: int) -> None:
        commit_at = self._offsets.finish(partition, offset)
        if commit_at is not None:
            await self._commit(partition, commit_at)

    async def _commit(self, partition: TopicPartition, offset: int) -> None:
        """A failed commit is retried a few times; a later commit also covers it."""
        consumer = self._live_consumer()
        if consumer is None or partition not in self.assigned:
            return
        async with self._commit_lock:
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(kafka_error_is_transient),
                    stop=stop_after_attempt(COMMIT_ATTEMPTS),
                    wait=publish_backoff(),
                    before_sleep=lambda state: self._commit_failed(state.outcome),
                    reraise=True,
                ):
                    with attempt:
                        await consumer.commit({partition: offset})
            except Exception as error:
                self._outcomes.failed("commit", error)
                log.warning("commit failed; the message may be redelivered after a restart")

    def _commit_failed(self, outcome: Future[Any] | None) -> None:
        if outcome is not None and (error := outcome.exception()) is not None:
            self._outcomes.failed("commit", error)

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Let in-flight work of revoked partitions finish (bounded) so its offsets are committed."""
        deadline = (
            asyncio.get_running_loop().time() + self._settings.kafka.session_timeout_ms / 2000
        )
        while any(self._offsets.pending(p) for p in revoked):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        self.assigned -= revoked
        for partition in revoked:
            self._offsets.forget(partition)

    def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """New partitions join a paused intake paused."""
        self.assigned |= assigned
        consumer = self._live_consumer()
        if consumer is not None and self._paused_for is not None:
            consumer.pause(*assigned)

    async def drain(self, timeout_s: float) -> bool:
        """Stop taking messages and wait for those in flight; True when all finished."""
        self._stopping = True
        if self._flow_task is not None:
            self._flow_task.cancel()
            await asyncio.gather(self._flow_task, return_exceptions=True)
        drained = await self._dispatcher.drain(timeout_s)
        if not drained:
            await self._dispatcher.cancel()
        return drained


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._worker.partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._worker.partitions_assigned(set(assigned))
