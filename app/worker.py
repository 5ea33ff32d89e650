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

from app.keyed import KeyedDispatcher
from app.offsets import OffsetTracker
from app.service import Outcome, SyncService
from app.settings import Settings

log = structlog.get_logger(__name__)

CLOUDEVENTS_JSON = "application/cloudevents+json"
OutcomeHook = Callable[[ConsumerRecord[Any, Any], Outcome], None]


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value is not None else None


class Worker:
    def __init__(
        self,
        broker: KafkaBroker,
        service: SyncService,
        settings: Settings,
        *,
        on_outcome: OutcomeHook = lambda record, outcome: None,
    ) -> None:
        self._broker = broker
        self._service = service
        self._settings = settings
        self._dispatcher = KeyedDispatcher(max_in_flight=settings.kafka.max_in_flight)
        self._offsets = OffsetTracker()
        self._commit_lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = False
        self._on_outcome = on_outcome
        self.assigned: set[TopicPartition] = set()

    def subscribe(self) -> None:
        kafka = self._settings.kafka
        self._subscriber = self._broker.subscriber(
            *self._settings.topics.inputs,
            group_id=kafka.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=kafka.heartbeat_interval_ms,
            listener=_Rebalance(self),
        )
        self._subscriber(self.on_message)

    @property
    def consuming(self) -> bool:
        return (
            bool(getattr(self, "_subscriber", None) and self._subscriber.running)
            and not self._stopping
        )

    @property
    def in_flight(self) -> int:
        return self._dispatcher.in_flight

    async def on_message(self, msg: KafkaMessage) -> None:
        """Schedule the message behind earlier ones with its key; returns without waiting for it."""
        record: ConsumerRecord[Any, Any] = msg.raw_message
        if self._stopping:
            return
        self._consumer = msg.consumer
        partition = TopicPartition(record.topic, record.partition)
        self._offsets.start(partition, record.offset)
        await self._dispatcher.submit(record.key, lambda: self._process(record, partition))

    async def _process(self, record: ConsumerRecord[Any, Any], partition: TopicPartition) -> None:
        key = _text(record.key)
        with structlog.contextvars.bound_contextvars(
            key=key, topic=record.topic, offset=record.offset
        ):
            outcome = await self._service.handle(record.value, key=key)
            if outcome.dead_letter_reason is not None:
                await self._until_published(lambda: self._dead_letter(record, outcome))
            await self._until_published(
                lambda: self._broker.publish(
                    outcome.result.to_bytes(),
                    topic=self._settings.topics.results,
                    key=record.key,
                    headers={"content-type": CLOUDEVENTS_JSON},
                )
            )
        self._on_outcome(record, outcome)
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
        return await self._broker.publish(
            record.value or b"",
            topic=self._settings.topics.dead_letter,
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
        consumer = self._consumer
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

    async def drain(self, timeout_s: float) -> bool:
        """Stop taking messages and wait for those in flight; True when all finished."""
        self._stopping = True
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
        self._worker.assigned |= set(assigned)
