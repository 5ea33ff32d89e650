"""Flow control: stop fetching while work cannot proceed, without leaving the consumer group.

Pausing the assigned partitions keeps the consumer polling and in its group, which a
handler blocked for hours (a spent daily budget) would not: it would be evicted after
`max.poll.interval`. The reason is logged and exported as a gauge per reason; `/readyz`
stays 200 meanwhile, since the worker is healthy and waiting on purpose.

The backfill topic's partitions are also held on their own (`backfill_held`) while
enough backfill work is in flight or only the live events' share of the day's budget
is left, so the live topics keep flowing meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal, get_args

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from app.kafka.offsets import OffsetTracker
from app.metrics import Metrics

log = structlog.get_logger(__name__)

PauseReason = Literal[
    "backlog", "daily_budget", "upstream_outage", "limiter_unavailable", "state_unavailable"
]
CHECK_INTERVAL_S = 0.5


class FlowControl:
    """Owns the pause reasons; the consumer asks it to re-check after every change."""

    def __init__(
        self,
        metrics: Metrics,
        offsets: OffsetTracker,
        *,
        consumer: Callable[[], AIOKafkaConsumer | None],
        backlog_full: Callable[[], bool],
        external_reason: Callable[[], PauseReason | None],
        backfill_topic: str,
        backfill_held: Callable[[], bool],
    ) -> None:
        self._metrics = metrics
        self._offsets = offsets
        self._consumer = consumer
        self._backlog_full = backlog_full
        self._external_reason = external_reason
        self._backfill_topic = backfill_topic
        self._backfill_held = backfill_held
        self._backfill_paused = False
        self._paused_for: PauseReason | None = None
        self._lag_reported: set[TopicPartition] = set()
        self._stopped = False
        self._task: asyncio.Task[None] | None = None
        for label in get_args(PauseReason):  # every reason exported from the start, at 0
            metrics.intake_paused.labels(label).set(0)

    @property
    def paused_for(self) -> PauseReason | None:
        return self._paused_for

    def reason(self) -> PauseReason | None:
        if self._backlog_full():
            return "backlog"
        return self._external_reason()

    def apply(self) -> None:
        """Pause every assigned partition while there is a reason, resume when there is none."""
        consumer = self._consumer()
        if consumer is None:
            return
        reason = None if self._stopped else self.reason()
        if reason != self._paused_for:
            self._pause_all(consumer, reason)
        if reason is None:
            self._hold_backfill(consumer, hold=not self._stopped and self._backfill_held())

    def _pause_all(self, consumer: AIOKafkaConsumer, reason: PauseReason | None) -> None:
        partitions = consumer.assignment()
        if reason is not None:
            consumer.pause(*partitions)
            log.warning("intake paused", reason=reason)
        else:
            consumer.resume(*partitions)
            log.info("intake resumed", was=self._paused_for)
        for label in get_args(PauseReason):
            self._metrics.intake_paused.labels(label).set(1 if label == reason else 0)
        self._paused_for = reason
        self._backfill_paused = reason is not None

    def _backfill_partitions(self, partitions: set[TopicPartition]) -> list[TopicPartition]:
        return [p for p in partitions if p.topic == self._backfill_topic]

    def _hold_backfill(self, consumer: AIOKafkaConsumer, *, hold: bool) -> None:
        """Pause or resume only the backfill topic, beside the live topics that keep flowing."""
        if hold == self._backfill_paused:
            return
        partitions = self._backfill_partitions(consumer.assignment())
        if hold:
            consumer.pause(*partitions)
        else:
            consumer.resume(*partitions)
        self._backfill_paused = hold

    def joined(self, partitions: set[TopicPartition]) -> None:
        """Partitions assigned while intake is paused join it paused."""
        consumer = self._consumer()
        if consumer is None:
            return
        if self._paused_for is not None:
            consumer.pause(*partitions)
        elif self._backfill_paused:
            consumer.pause(*self._backfill_partitions(partitions))

    async def _observe_lag(self) -> None:
        """Messages behind the partition end: not yet fetched, plus fetched but unfinished."""
        consumer = self._consumer()
        if consumer is None:
            return
        backfill_lag: int | None = None
        assignment = consumer.assignment()
        for gone in self._lag_reported - assignment:
            # Another replica owns it now and reports it: a stale value here would add up.
            self._metrics.consumer_lag.remove(gone.topic, str(gone.partition))
        self._lag_reported &= assignment
        if not self._backfill_partitions(assignment):
            self._metrics.backfill_lag.set(0)
        for partition in assignment:
            highwater = consumer.highwater(partition)
            if highwater is None:
                continue
            try:
                fetched = await consumer.position(partition)
            except KafkaError:
                continue
            lag = max(highwater - fetched, 0) + self._offsets.pending(partition)
            self._metrics.consumer_lag.labels(partition.topic, str(partition.partition)).set(lag)
            self._lag_reported.add(partition)
            if partition.topic == self._backfill_topic:
                backfill_lag = (backfill_lag or 0) + lag
        if backfill_lag is not None:
            self._metrics.backfill_lag.set(backfill_lag)

    async def _watch(self) -> None:
        """Reasons outside the consumer (budget, upstream health) change by the clock."""
        while True:
            try:
                self.apply()
                await self._observe_lag()
            except Exception:
                log.exception("flow control check failed")
            await asyncio.sleep(CHECK_INTERVAL_S)

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
