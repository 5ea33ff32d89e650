"""consume → (service) → report: the Kafka side of the pipeline.

Offsets are committed by hand (`AckPolicy.MANUAL`): FastStream's default commits
before the handler runs. A message's offset becomes committable only after its
result — and, for failures, its dead-letter copy — is acknowledged by Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from app.events import ResultEvent
from app.keyed import KeyedDispatcher
from app.metrics import Metrics
from app.offsets import OffsetTracker
from app.service import Outcome, SyncService
from app.settings import Settings

log = structlog.get_logger(__name__)

CLOUDEVENTS_JSON = "application/cloudevents+json"
FLOW_CHECK_INTERVAL_S = 0.5


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value is not None else None


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
        self._results = self._broker.publisher(
            topics.results,
            title="elements-sync results",
            description="One elements.sync.result CloudEvent per input message, keyed like it.",
            schema=ResultEvent,
        )
        self._forms = self._broker.publisher(
            topics.form_submissions,
            title="elements-sync form submissions",
            description="form.submitted CloudEvents written by the HTTP ingress, keyed by customer id.",
        )
        self._dead_letters = self._broker.publisher(
            topics.dead_letter,
            title="elements-sync dead letters",
            description=(
                "The original bytes of inputs that failed or were rejected; headers "
                "x-dead-letter-reason, x-dead-letter-message, x-original-topic/partition/offset."
            ),
            schema=bytes,
        )
        self._subscriber = self._broker.subscriber(
            *self._settings.topics.inputs,
            group_id=kafka.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=kafka.heartbeat_interval_ms,
            listener=_Rebalance(self),
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
        key = _text(record.key)
        with structlog.contextvars.bound_contextvars(
            key=key, topic=record.topic, offset=record.offset
        ):
            outcome = await self._service.handle(record.value, key=key)
            if outcome.dead_letter_reason is not None:
                await self._until_published(lambda: self._dead_letter(record, outcome))
            await self._until_published(
                lambda: self._results.publish(
                    outcome.result.to_bytes(),
                    key=record.key,
                    headers={"content-type": CLOUDEVENTS_JSON},
                )
            )
        self._count(outcome)
        self._apply_flow()
        commit_at = self._offsets.finish(partition, record.offset)
        if commit_at is not None:
            await self._commit(partition, commit_at)

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], outcome: Outcome) -> Any:
        headers = {_text(k) or k: _text(v) or "" for k, v in (record.headers or ())}
        headers.update(
            {
                "x-dead-letter-reason": outcome.dead_letter_reason or "",
                "x-dead-letter-message": (outcome.dead_letter_message or "")[:1000],
                "x-original-topic": record.topic,
                "x-original-partition": str(record.partition),
                "x-original-offset": str(record.offset),
                "x-event-id": outcome.result.data.eventId or "",
            }
        )
        return await self._dead_letters.publish(
            record.value or b"",
            key=record.key,
            headers=headers,
        )

    @staticmethod
    async def _until_published(publish: Callable[[], Awaitable[Any]]) -> None:
        """Kafka must take the result before the offset moves on: keep trying while it cannot."""
        delay_s = 0.5
        while True:
            try:
                await publish()
                return
            except KafkaError as error:
                log.warning("publish failed, retrying", error=type(error).__name__, delay_s=delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 10.0)

    async def _commit(self, partition: TopicPartition, offset: int) -> None:
        consumer = self._live_consumer()
        if consumer is None or partition not in self.assigned:
            return
        async with self._commit_lock:
            try:
                await consumer.commit({partition: offset})
            except KafkaError as error:
                log.warning(
                    "commit failed; the message may be redelivered", error=type(error).__name__
                )

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
