"""Letting partitions go — at a rebalance or on SIGTERM — without processing anything twice.

Kafka hands a partition to its next owner, which fetches from the committed offset on. So
before this replica lets a partition go (`PartitionHandover.let_go`, awaited in the consumer's
revoke callback, which aiokafka awaits before it rejoins the group, and by the SIGTERM drain
before the consumer leaves):

1. every event taken from the partition is asked to stop (`app.event_stop`): it ends at its
   next step boundary — between two Elements requests, never in the middle of one — with
   no result and its offset not released;
2. the events are awaited, at most `KAFKA_HANDOVER_TIMEOUT_S`; past that they are cancelled,
   with a warning (an Elements request then in flight may be answered after the next owner
   started);
3. what finished above the commit point is written down (a handover record on the state
   topic, see `app.kafka.offsets`), and the commit point is committed.

The next owner reads the state topic to its end before it takes messages of a newly
assigned partition (`StateTopic.caught_up`), so it knows the records, skips what was
finished here, and processes what stopped here. It starts only after this replica let go.

Handover records live under `handover/<group id>/<topic>/<partition>`: the latest one per
partition counts, so the compacted topic keeps one per partition. A record that cannot be
read counts as none (those messages are then processed again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Literal

import structlog
from aiokafka.structs import TopicPartition
from pydantic import BaseModel, ValidationError

from app.event_stop import EventStop
from app.kafka.offsets import OffsetTracker
from app.metrics import Metrics
from app.settings import KafkaSettings

log = structlog.get_logger(__name__)

HANDOVER_PREFIX = "handover/"
"""The state topic's keys of handover records: `handover/<group id>/<topic>/<partition>`."""
CANCEL_WAIT_S = 5.0
"""How long cancelled events get to unwind, past the handover's deadline."""
LEAVE_BEHIND_MIN_S = 5.0
"""The least time left for writing down and committing, however long the events took."""
REBALANCE_MARGIN_S = 10.0
"""What the group waits for a member beyond its longest handover: a rejoin, a slow broker."""


def rebalance_timeout_ms(kafka: KafkaSettings) -> int:
    """How long the group waits for a member to rejoin: its longest handover (`let_go`: the
    events' `KAFKA_HANDOVER_TIMEOUT_S`, the cancelled ones' unwinding, then the records and
    the commit) and a margin. A Kafka broker leaves a slower member out of the new
    generation: its partitions would reach their next owner while it still hands them over.
    aiokafka's default is the session timeout."""
    longest_handover_s = kafka.handover_timeout_s + CANCEL_WAIT_S + LEAVE_BEHIND_MIN_S
    return max(kafka.session_timeout_ms, int((longest_handover_s + REBALANCE_MARGIN_S) * 1000))


Reason = Literal["rebalance", "shutdown"]
Commit = Callable[[dict[TopicPartition, int]], Awaitable[None]]
Write = Callable[[str, bytes], Awaitable[None]]


class HandoverRecord(BaseModel):
    """A partition's owner let go, with the offsets in `done` finished at or above
    `resumes_at` (offset → the message's timestamp, ms): the last commit point Kafka took
    before the record was written, so that a commit after it that fails is no rewind."""

    resumes_at: int
    done: dict[int, int]


def handover_key(group_id: str, partition: TopicPartition) -> str:
    return f"{HANDOVER_PREFIX}{group_id}/{partition.topic}/{partition.partition}"


class HandoverRecords:
    """The latest handover record per partition of this consumer group, as read from the
    state topic (`read`), and writing new ones (`save`)."""

    def __init__(self, group_id: str, write: Write) -> None:
        self._group_id = group_id
        self._write = write
        self._latest: dict[TopicPartition, HandoverRecord] = {}

    def read(self, key: str, value: bytes | None) -> None:
        """A record of the state topic; keys of other kinds or other groups are passed over."""
        if not key.startswith(HANDOVER_PREFIX):
            return
        group, topic, number = key[len(HANDOVER_PREFIX) :].rsplit("/", 2)
        if group != self._group_id or not number.isdigit():
            return
        partition = TopicPartition(topic, int(number))
        if value is None:
            self._latest.pop(partition, None)
            return
        try:
            self._latest[partition] = HandoverRecord.model_validate_json(value)
        except ValidationError:
            log.warning("handover record unreadable; skipped", key=key)
            self._latest.pop(partition, None)

    def get(self, partition: TopicPartition) -> HandoverRecord | None:
        return self._latest.get(partition)

    async def save(self, partition: TopicPartition, record: HandoverRecord) -> None:
        await self._write(
            handover_key(self._group_id, partition), record.model_dump_json().encode()
        )
        self._latest[partition] = record


class PartitionHandover:
    """The events taken from each partition and not yet ended, and letting partitions go."""

    def __init__(
        self,
        offsets: OffsetTracker,
        records: HandoverRecords,
        *,
        commit: Commit,
        metrics: Metrics,
    ) -> None:
        self._offsets = offsets
        self._records = records
        self._commit = commit
        self._metrics = metrics
        self._taken: dict[Hashable, set[EventStop]] = {}

    def taken(self, partition: TopicPartition) -> EventStop:
        """A message of `partition` was taken: its event's handover, until `ended`."""
        handover = EventStop(partition)
        self._taken.setdefault(partition, set()).add(handover)
        return handover

    def ended(self, handover: EventStop, *, stopped: bool) -> None:
        """The event finished (or, `stopped`, ended at a step boundary for the next owner)."""
        handover.end(stopped=stopped)
        events = self._taken.get(handover.partition, set())
        events.discard(handover)
        if not events:
            self._taken.pop(handover.partition, None)
        if stopped:
            self._metrics.handed_over.inc()

    def expect(self, partition: TopicPartition) -> None:
        """The partition was assigned: skip what its previous owner finished."""
        self._offsets.forget(partition)
        if (record := self._records.get(partition)) is not None:
            self._offsets.expect(partition, resumes_at=record.resumes_at, done=record.done)

    async def let_go(
        self, partitions: set[TopicPartition], *, timeout_s: float, reason: Reason
    ) -> bool:
        """Stop the partitions' events, wait for them (at most `timeout_s`), write down what
        finished, commit; False when some had to be cancelled."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        events = [h for p in partitions for h in self._taken.get(p, ())]
        log.info(
            "handing partitions over", reason=reason, partitions=len(partitions), events=len(events)
        )
        for handover in events:
            handover.request()
        unfinished = await self._until_ended(events, timeout_s)
        if unfinished:
            log.warning(
                "events did not stop in time; cancelled",
                reason=reason,
                events=len(unfinished),
                timeout_s=timeout_s,
            )
            await self._cancel(unfinished)
        committed, recorded = await self._leave_behind(
            partitions, timeout_s=max(timeout_s - (loop.time() - started), LEAVE_BEHIND_MIN_S)
        )
        took_s = loop.time() - started
        self._metrics.handover_seconds.labels(reason).observe(took_s)
        log.info(
            "partitions handed over",
            reason=reason,
            partitions=len(partitions),
            stopped=sum(1 for h in events if h.stopped and h not in unfinished),
            finished=sum(1 for h in events if h.ended and not h.stopped),
            cancelled=len(unfinished),
            committed=committed,
            finished_above_commit=recorded,
            took_s=round(took_s, 3),
        )
        return not unfinished

    @staticmethod
    async def _until_ended(events: list[EventStop], timeout_s: float) -> list[EventStop]:
        try:
            async with asyncio.timeout(timeout_s):
                for handover in events:
                    await handover.until_ended()
        except TimeoutError:
            pass
        return [h for h in events if not h.ended]

    @staticmethod
    async def _cancel(events: list[EventStop]) -> None:
        tasks = [h.task for h in events if h.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_WAIT_S)

    async def _leave_behind(
        self, partitions: set[TopicPartition], *, timeout_s: float
    ) -> tuple[int, int]:
        """Write down what finished above each commit point, then commit the points, within
        `timeout_s`; the partitions are forgotten first: their next owner starts from the
        committed offset. Past the deadline (Kafka does not take the writes) the next owner
        starts from the last commit that Kafka took, and processes the rest again, as after a
        crash. Returns how many partitions were committed, and how many messages written down."""
        points: dict[TopicPartition, int] = {}
        records: dict[TopicPartition, HandoverRecord] = {}
        for partition in sorted(partitions):
            let_go = self._offsets.handover(partition)
            self._offsets.forget(partition)
            if let_go is None:
                continue
            points[partition] = let_go.commit_at
            if let_go.done_above:
                records[partition] = HandoverRecord(
                    resumes_at=let_go.resumes_at, done=let_go.done_above
                )
        recorded = 0
        try:
            async with asyncio.timeout(timeout_s):
                for partition, record in records.items():
                    try:
                        await self._records.save(partition, record)
                        recorded += len(record.done)
                    except Exception as error:
                        log.warning(
                            "handover record not saved; the next owner processes these again",
                            partition=str(partition),
                            offsets=len(record.done),
                            error=type(error).__name__,
                        )
                if points:
                    await self._commit(points)
        except TimeoutError:
            log.warning(
                "Kafka took no handover record or commit in time; the next owner starts from "
                "the last commit",
                partitions=len(points),
                timeout_s=timeout_s,
            )
            return 0, recorded
        return len(points), recorded
