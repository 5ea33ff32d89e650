"""commit: each partition's commit point, once it moves, committed to the group.

A commit is cumulative, so a failed one is retried only a few times and then left: the
next commit of the partition covers it, and until then a restart redelivers the messages
above the last commit that went through (each gets its result again, nothing in Elements
twice). Only partitions this replica still holds are committed: a commit of a partition
the group gave away would move its next owner's position.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from app.kafka.offsets import OffsetTracker
from app.kafka.publisher import kafka_error_is_transient
from app.retry import exponential_backoff, retrying_on
from app.settings import RetrySettings

log = structlog.get_logger(__name__)

COMMIT_ATTEMPTS = 5


class Commits:
    def __init__(
        self,
        offsets: OffsetTracker,
        *,
        consumer: Callable[[], AIOKafkaConsumer | None],
        held: Callable[[], Collection[TopicPartition]],
        retry: RetrySettings,
        failed: Callable[[BaseException], None],
        committed: Callable[[TopicPartition, int], None] = lambda partition, offset: None,
    ) -> None:
        """`held`: the partitions this replica holds now; `failed` is told of every failed
        commit (retried or not), `committed` of every offset Kafka took."""
        self._offsets = offsets
        self._consumer = consumer
        self._held = held
        self._retry = retry
        self._failed = failed
        self._committed = committed
        self._lock = asyncio.Lock()

    async def release(self, partition: TopicPartition, offset: int) -> None:
        """The message at `offset` is done: commit when that moved the commit point."""
        commit_at = self._offsets.finish(partition, offset)
        if commit_at is not None:
            await self.commit({partition: commit_at})

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        consumer = self._consumer()
        held = self._held()
        offsets = {p: o for p, o in offsets.items() if p in held}
        if consumer is None or not offsets:
            return
        async with self._lock:
            try:
                async for attempt in retrying_on(
                    kafka_error_is_transient,
                    wait=exponential_backoff(self._retry),
                    stop=COMMIT_ATTEMPTS,
                    on_retry=lambda error, _: self._failed(error),
                ):
                    with attempt:
                        await consumer.commit(dict(offsets))
                for partition, point in offsets.items():
                    self._offsets.committed(partition, point)
                    self._committed(partition, point)
            except Exception as error:
                self._failed(error)
                log.warning("commit failed; the message may be redelivered after a restart")
