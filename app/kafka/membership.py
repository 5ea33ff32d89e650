"""membership: the consumer's place in its group, and what readiness asks of it.

aiokafka tells the consumer of the group through its rebalance listener: a (re)join first
revokes (the first time nothing), then assigns. Between the two, messages already fetched may
still arrive; each rebalance and the shutdown start a new generation, and a message taken in an
earlier one is dropped (its partition's next owner fetches it again). Newly assigned partitions
are taken only once the durable memory read what their previous owner wrote to the state
topic; meanwhile their messages wait.

The gauges of the partitions held follow the assignment: partitions per input topic, and the
committed offset of each live partition (-1 until this pod's first commit of it; the backfill
has none, it waits by design).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection

import structlog
from aiokafka.structs import TopicPartition

from app.metrics import Metrics
from app.settings import TopicSettings

log = structlog.get_logger(__name__)


class GroupMembership:
    """Joined, given partitions, taking them, stopping: the consumer's group state, its
    transitions, and the gauges of the partitions it holds."""

    def __init__(
        self,
        metrics: Metrics,
        topics: TopicSettings,
        *,
        caught_up: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`caught_up` is awaited before messages of newly assigned partitions are taken: the
        durable memory reads what the partitions' previous owner wrote first."""
        self._metrics = metrics
        self._inputs = [*topics.inputs, topics.backfill]
        self._backfill_topic = topics.backfill
        self._caught_up = caught_up
        self._memory_ready = asyncio.Event()
        self._memory_ready.set()
        self._stopping = False
        self._in_group = False
        self._generation = 0
        """Counts the times partitions were taken away: a message taken before one is dropped."""
        self.assigned: set[TopicPartition] = set()
        self.assignments = 0
        """How many times the group gave this consumer its partitions (an empty set counts)."""
        self._assigned_once = asyncio.Event()
        self._taking: set[TopicPartition] = set()
        """Assigned partitions whose messages are taken: caught up, and not being let go."""
        metrics.track_inputs(self._inputs)

    @property
    def consuming(self) -> bool:
        """The group gave this consumer its partitions, once at least, and it is not stopping.
        An empty assignment counts (a replica beyond the partition count gets none; the
        alerts tell of that), and so does one whose later rebalances are under way: every
        member waits in those at once, and readiness must not empty the forms' Service."""
        return self.assignments > 0 and not self._stopping

    @property
    def in_group(self) -> bool:
        """Taking part in the group: joined it, its partitions perhaps not given yet."""
        return self._in_group

    @property
    def catching_up(self) -> bool:
        """Newly assigned partitions wait for the state topic to be read to its end."""
        return not self._memory_ready.is_set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def left_group(self) -> None:
        """The consumer's start failed or was abandoned: not in the group any more."""
        self._in_group = False
        self.assignments = 0
        self._assigned_once.clear()

    async def given_partitions(self) -> None:
        """Return once the group gave this consumer its partitions and they are taken (the
        state topic read for them): aiokafka's start returns before its listener is done."""
        await self._assigned_once.wait()

    async def takes(self, partition: TopicPartition) -> bool:
        """Whether a message of `partition` arriving now is processed here: it waits while newly
        assigned partitions catch up, and is dropped when its partition went meanwhile."""
        generation = self._generation
        await self._memory_ready.wait()
        return not self._stopping and generation == self._generation and partition in self._taking

    def rebalancing(self, revoked: Collection[TopicPartition]) -> None:
        """aiokafka revokes whenever the consumer (re)joins the group, the first time nothing:
        from then on it takes part in the group, and no longer takes the revoked partitions."""
        self._in_group = True
        self._generation += 1
        self._taking -= set(revoked)

    def stop(self) -> None:
        """Take no more messages: the consumer hands every partition over and leaves."""
        self._stopping = True
        self._generation += 1
        self._taking.clear()

    def added(self, partitions: Collection[TopicPartition]) -> None:
        """The group gave these partitions; they are taken once `take` has caught them up."""
        self._assignment_changed(added=partitions)

    def gone(self, partitions: Collection[TopicPartition]) -> None:
        """These partitions were handed over: no longer held."""
        self._assignment_changed(gone=partitions)

    async def take(
        self,
        partitions: set[TopicPartition],
        *,
        expect: Callable[[TopicPartition], None],
    ) -> None:
        """Take the partitions once the durable memory read what their previous owner wrote
        (its dossier records and its handover records); `expect` is told of each first."""
        if not partitions or self._stopping:
            self._given()
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._memory_ready.clear()
        try:
            if self._caught_up is not None:
                try:
                    await self._caught_up()
                except Exception:
                    log.exception("state topic not caught up; taking the partitions anyway")
            for partition in partitions:
                expect(partition)
            self._taking |= partitions
        finally:
            self._memory_ready.set()
            self._given()
        log.info(
            "partitions assigned",
            partitions=len(partitions),
            caught_up_s=round(loop.time() - started, 3),
        )

    def committed(self, partition: TopicPartition, offset: int) -> None:
        """Kafka took this pod's commit of `offset` for `partition`."""
        if self._live(partition) and partition in self.assigned:
            self._metrics.committed_offset.labels(partition.topic, str(partition.partition)).set(
                offset
            )

    def _given(self) -> None:
        self.assignments += 1
        self._assigned_once.set()

    def _assignment_changed(
        self,
        *,
        added: Collection[TopicPartition] = (),
        gone: Collection[TopicPartition] = (),
    ) -> None:
        """Keep `assigned` and its metrics: partitions per topic, and the committed offset
        of each live partition held (-1 until its first commit here)."""
        self.assigned = (self.assigned - set(gone)) | set(added)
        for topic in self._inputs:
            held = sum(1 for p in self.assigned if p.topic == topic)
            self._metrics.assigned_partitions.labels(topic).set(held)
        for partition in gone:
            if self._live(partition):
                with contextlib.suppress(KeyError):
                    self._metrics.committed_offset.remove(partition.topic, str(partition.partition))
        for partition in added:
            if self._live(partition):
                self._metrics.committed_offset.labels(
                    partition.topic, str(partition.partition)
                ).set(-1)

    def _live(self, partition: TopicPartition) -> bool:
        topic: str = partition.topic
        return topic != self._backfill_topic
