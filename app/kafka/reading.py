"""Read assigned partitions up to offsets taken before: the one loop every reader of a whole
topic shares (the state topic at start-up, `redrive`, `results`).

A reader takes the partitions' end offsets first, then reads until its position reaches
them: what is written meanwhile is left for later (the next run, or the follower).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.structs import TopicPartition

FETCH_TIMEOUT_MS = 500


async def records_until(
    consumer: AIOKafkaConsumer, end: Mapping[TopicPartition, int]
) -> AsyncIterator[ConsumerRecord[Any, Any]]:
    """The records of `end`'s partitions (assigned, positioned) below their end offsets."""
    remaining = {tp for tp in end if await consumer.position(tp) < end[tp]}
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=FETCH_TIMEOUT_MS)
        for tp, records in batch.items():
            for record in records:
                if record.offset < end[tp]:
                    yield record
        for tp in list(remaining):
            if await consumer.position(tp) >= end[tp]:
                remaining.discard(tp)
