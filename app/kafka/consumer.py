"""consume: the input topics, in key order, each message to exactly one outcome.

Offsets are committed by hand (`AckPolicy.MANUAL`): FastStream's default commits
before the handler runs. A message's offset becomes committable only after its
result — and, for failures, its dead-letter copy — is acknowledged by Kafka.

The backfill topic is read by the same subscriber, at a lower priority: its events' tickets
(`app.ticket`) say "backfill", so the limiter gives every Elements slot to live events
first, and at most `BACKFILL_MAX_IN_FLIGHT` of them are taken at once (`app.kafka.backfill`;
flow control holds the backfill partitions meanwhile), so live events never queue behind them.

Partitions taken away — a rebalance, or SIGTERM — are handed over, not doubled
(`app.kafka.partition_handover`): their events stop at their next step boundary without a result,
what finished is committed (and what finished above the commit point written down for
the next owner), and only then does the consumer rejoin the group or leave it. A message
taken before its partition went but not yet started is dropped: the next owner fetches it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractContextManager
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.structs import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from opentelemetry.trace import NoOpTracer, Span, SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from app.clients.limiter import LiveWork
from app.event_stop import EventStop, HandedOver
from app.kafka.backfill import BackfillIntake
from app.kafka.commits import Commits
from app.kafka.flow import FlowControl, PauseReason
from app.kafka.keyed import KeyedDispatcher, NewestArrivals
from app.kafka.membership import GroupMembership
from app.kafka.offsets import OffsetTracker
from app.kafka.partition_handover import (
    HandoverRecords,
    PartitionHandover,
    Reason,
    rebalance_timeout_ms,
)
from app.kafka.publisher import OutcomePublisher, header_text
from app.metrics import Metrics
from app.progress import EventsInFlight
from app.service import Outcome, SyncService
from app.settings import Settings
from app.ticket import Priority, Ticket
from app.tracing import EVENT_SPAN_NAME, describe_outcome, parent_context

log = structlog.get_logger(__name__)

HANDED_OVER_ATTRIBUTE = "elements_sync.handed_over"
"""Set on the span of an event that stopped for its partition's next owner."""


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


class EventConsumer:
    """The consumer loop: takes each input message, runs it through the service in key
    order, hands its outcome to the publisher, and releases its offset."""

    def __init__(
        self,
        broker: KafkaBroker,
        service: SyncService,
        settings: Settings,
        metrics: Metrics,
        outcomes: OutcomePublisher,
        *,
        backfill: BackfillIntake,
        live: LiveWork,
        arrivals: NewestArrivals,
        handover_records: HandoverRecords,
        membership: GroupMembership,
        external_pause_reason: Callable[[], PauseReason | None] = lambda: None,
        tracer: Tracer | None = None,
    ) -> None:
        """`backfill` counts the backfill events, `live` the live ones for the limiter,
        `arrivals` the newest arrival per queue for coalescing; `membership` keeps the
        consumer's place in its group (the partitions given, taken, let go)."""
        self._service = service
        self._backfill = backfill
        self._live_work = live
        self._arrivals = arrivals
        self.membership = membership
        self._tracer = tracer or NoOpTracer()
        self._settings = settings
        self._metrics = metrics
        self._outcomes = outcomes
        self._dispatcher = KeyedDispatcher(max_in_flight=settings.kafka.max_in_flight)
        self._offsets = OffsetTracker()
        self._commits = Commits(
            self._offsets,
            consumer=lambda: self._live_consumer(),
            held=lambda: membership.assigned,
            retry=settings.retry,
            failed=lambda error: outcomes.failed("commit", error),
            committed=membership.committed,
        )
        self._handovers = PartitionHandover(
            self._offsets, handover_records, commit=self._commits.commit, metrics=metrics
        )
        self.in_flight = EventsInFlight()
        """The events being processed, what each waits for (`app.progress`)."""
        metrics.track_in_flight(self.in_flight.oldest_age_s)
        self._subscriber = self._subscribe(broker)
        self.flow = FlowControl(
            metrics,
            self._offsets,
            consumer=self._live_consumer,
            backlog_full=lambda: self._dispatcher.in_flight >= settings.kafka.max_in_flight,
            external_reason=external_pause_reason,
            backfill_topic=settings.topics.backfill,
            backfill_held=lambda: backfill.held,
        )

    def _subscribe(self, broker: KafkaBroker) -> Any:
        """The input subscriber (which also describes the inputs in the AsyncAPI document)."""
        kafka = self._settings.kafka
        subscriber = broker.subscriber(
            *self._settings.topics.inputs,
            self._settings.topics.backfill,
            group_id=kafka.group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=kafka.heartbeat_interval_ms,
            rebalance_timeout_ms=rebalance_timeout_ms(kafka),
            listener=_Rebalance(self),
            parser=_tolerant_parser,
            decoder=_undecoded,
            title="elements-sync inputs",
            description=(
                "CloudEvents 1.0 (structured JSON) of type customer.changed, contract.changed or "
                "form.submitted, keyed by dossier number (forms: by portal customer id); "
                "the backfill topic's customer.changed events are served after the others. "
                "Every message gets exactly one result."
            ),
        )
        subscriber(self.on_message)
        return subscriber

    @property
    def consuming(self) -> bool:
        """See `GroupMembership.consuming`."""
        return self.membership.consuming

    @property
    def assigned(self) -> set[TopicPartition]:
        """The partitions the group gave this consumer and it has not handed over."""
        return self.membership.assigned

    def _live_consumer(self) -> AIOKafkaConsumer | None:
        consumer = self._subscriber.consumer
        return consumer if isinstance(consumer, AIOKafkaConsumer) else None

    async def on_message(self, msg: KafkaMessage) -> None:
        """Schedule the message behind earlier ones with its key; returns without waiting for it."""
        arrived = asyncio.get_running_loop().time()
        record: ConsumerRecord[Any, Any] = msg.raw_message
        partition = TopicPartition(record.topic, record.partition)
        if not await self.membership.takes(partition):
            return  # taken before its partition went: its next owner fetches it again
        if self._offsets.finished_elsewhere(partition, record.offset, record.timestamp):
            log.info("finished by the partition's previous owner; skipped", offset=record.offset)
            self._offsets.start(partition, record.offset, record.timestamp)
            await self._commits.release(partition, record.offset)
            return
        handover = self._handovers.taken(partition)
        try:
            await handover.interruptible(self._dispatcher.reserve())
        except HandedOver:
            self._handovers.ended(handover, stopped=False)
            return  # its partition went while it waited for a slot
        priority: Priority = (
            "backfill" if record.topic == self._settings.topics.backfill else "live"
        )
        if priority == "backfill":
            self._backfill.started()
        self._offsets.start(partition, record.offset, record.timestamp)
        # A backfill event queues apart from live events with its key: one waiting for
        # tomorrow's budget must not hold them back (the dossier lock still serialises both).
        queue = ("backfill", record.key) if priority == "backfill" else record.key
        self._arrivals.arrived(queue, arrived)
        handover.task = self._dispatcher.start(
            queue,
            lambda: self._prioritised(record, partition, handover, priority, arrived, queue),
        )
        # A job cancelled at a handover's deadline while it queued behind its key never ran.
        handover.task.add_done_callback(
            lambda _: self._ended(handover, priority, arrived, queue, finished=False)
        )
        self.flow.apply()

    async def _prioritised(
        self,
        record: ConsumerRecord[Any, Any],
        partition: TopicPartition,
        handover: EventStop,
        priority: Priority,
        arrived: float,
        queue: Hashable,
    ) -> None:
        """Process at this priority, on a ticket made as the job starts. A live event counts
        from when it starts; while it waits behind an earlier live event with its key, that
        one counts."""
        # Reads must start after the newest event of this key arrived: every event queued
        # behind this one may then be served by its sync (`app.pipeline.coalesce`).
        message = f"{record.topic}[{record.partition}]@{record.offset}"
        finished = False
        try:
            with (
                self._live_work.counted(priority),
                self.in_flight.tracked(message, started=arrived) as in_flight,
            ):
                newest = self._arrivals.newest(queue, since=arrived)
                ticket = Ticket(newest, priority, handover, in_flight)
                handover.checkpoint()  # its partition may have gone while it queued behind its key
                finished = await self._outcome_then_release(record, partition, arrived, ticket)
        except HandedOver:
            pass
        finally:
            self._ended(handover, priority, arrived, queue, finished=finished)

    def _ended(
        self,
        handover: EventStop,
        priority: Priority,
        arrived: float,
        queue: Hashable,
        *,
        finished: bool,
    ) -> None:
        """Once per job, whether it finished, stopped, or never ran."""
        if handover.ended:
            return
        self._arrivals.ended(queue, arrived)
        if priority == "backfill":
            self._backfill.ended(finished=finished)
        self._handovers.ended(handover, stopped=not finished and handover.requested)
        self.flow.apply()  # a slot is free: the backlog may no longer hold intake

    def _count(self, outcome: Outcome) -> None:
        data = outcome.result.data
        kind = data.eventType or "unknown"
        self._metrics.events.labels(kind, data.status).inc()
        self._metrics.processing.labels(kind).observe(data.durationMs / 1000)

    async def _outcome_then_release(
        self,
        record: ConsumerRecord[Any, Any],
        partition: TopicPartition,
        arrived: float,
        ticket: Ticket,
    ) -> bool:
        """Outcome, then result (and dead letter), then the offset — for every message that
        is not handed over; False for one that was (no result, the offset not released).

        `handle` raises nothing but `HandedOver`, and `deliver` returns only once Kafka took
        the result, so the offset is released after every other message; only a handover
        cancelled at its deadline leaves it uncommitted, and then the message is redelivered.
        """
        key = _text(record.key)
        with (
            event_span(self._tracer, record, key) as span,
            structlog.contextvars.bound_contextvars(
                key=key, topic=record.topic, offset=record.offset
            ),
        ):
            try:
                outcome = await self._service.handle(
                    record.value, key=key, arrived=arrived, ticket=ticket
                )
            except HandedOver:
                span.set_attribute(HANDED_OVER_ATTRIBUTE, True)
                log.info("event stopped; its partition's next owner processes it")
                return False
            describe_outcome(span, outcome.result.data)
            with structlog.contextvars.bound_contextvars(event_id=outcome.result.data.eventId):
                ticket.progress("publishing the result")
                with ticket.waiting("Kafka to take the result"):
                    await self._outcomes.deliver(record, outcome)
                try:
                    self._count(outcome)
                    self.flow.apply()
                except Exception:
                    log.exception("metrics or flow control failed after a result")
                with ticket.waiting("Kafka to take the commit"):
                    await self._commits.release(partition, record.offset)
        return True

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Hand the partitions over before the group gives them to their next owner.

        aiokafka calls this (awaiting it) whenever the consumer (re)joins the group, the
        first time with nothing to revoke: from then on it takes part in the group.
        """
        self.membership.rebalancing(revoked)
        if revoked:
            await self._let_go(revoked, reason="rebalance")
            self.membership.gone(revoked)

    async def _let_go(self, partitions: set[TopicPartition], *, reason: Reason) -> bool:
        timeout_s = self._settings.kafka.handover_timeout_s
        if reason == "shutdown":
            timeout_s = min(timeout_s, self._settings.shutdown_grace_period_s)
        return await self._handovers.let_go(partitions, timeout_s=timeout_s, reason=reason)

    async def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Take the partitions once the durable memory read what their previous owner wrote
        (its dossier records and its handover records); meanwhile messages wait."""
        self.membership.added(assigned)
        self.flow.joined(assigned)
        await self.membership.take(assigned, expect=self._handovers.expect)

    async def drain(self) -> bool:
        """Stop taking messages and hand every partition over, as a rebalance would (the
        consumer leaves the group next, which calls no revoke); True when no event had to be
        cancelled."""
        self.membership.stop()
        await self.flow.stop()
        drained = await self._let_go(set(self.membership.assigned), reason="shutdown")
        self.membership.gone(set(self.membership.assigned))
        return drained


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: EventConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._consumer.partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._consumer.partitions_assigned(set(assigned))


def event_span(
    tracer: Tracer, record: ConsumerRecord[Any, Any], key: str | None
) -> AbstractContextManager[Span]:
    """The message's span, a child of the trace its `traceparent` header names (if any).

    It covers the result and the commit too: the result carries its trace context.
    """
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
    }
    if key is not None:
        attributes["messaging.kafka.message.key"] = key
    return tracer.start_as_current_span(
        EVENT_SPAN_NAME,
        context=parent_context(header_text(record.headers or ())),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
    )
