"""The state topic: the worker's durable memory, one compacted record per key.

Keys name what a record is about: `dossier/<dossier number>` for a dossier's record
(`app.state.record`), `limiter/daily-count` for the day's Elements count. The whole
topic is read before the worker consumes its first event, so every event starts
from what the last worker knew; records are written with `acks=all` and awaited.
"""

from __future__ import annotations

import asyncio

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from faststream.kafka import KafkaBroker
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from app.kafka.connection import client_options
from app.kafka.publisher import kafka_error_is_transient
from app.retry import exponential_backoff
from app.settings import KafkaSettings, RetrySettings
from app.state.daily_count import DailyCount
from app.state.record import DossierRecord

log = structlog.get_logger(__name__)

DOSSIER_PREFIX = "dossier/"
DAILY_COUNT_KEY = "limiter/daily-count"
SAVE_ATTEMPTS = 3


def dossier_key(dossier_number: str) -> str:
    return DOSSIER_PREFIX + dossier_number


async def read_topic(kafka: KafkaSettings, topic: str, *, timeout_s: float) -> dict[str, bytes]:
    """The latest value of every key, read from the beginning to the end offsets taken now;
    a key whose latest value is a tombstone is left out."""
    consumer = AIOKafkaConsumer(**client_options(kafka), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        async with asyncio.timeout(timeout_s):
            partitions = [
                TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            latest: dict[str, bytes | None] = {}
            while [p for p in partitions if await consumer.position(p) < end[p]]:
                batch = await consumer.getmany(*partitions, timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        if record.key is not None:
                            latest[record.key.decode("utf-8", "replace")] = record.value
    finally:
        await consumer.stop()
    return {key: value for key, value in latest.items() if value is not None}


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer.topics()  # fetches the cluster's metadata
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise RuntimeError(f"the state topic {topic} does not exist")
    return set(partitions)


def dossier_records(values: dict[str, bytes]) -> list[DossierRecord]:
    """The dossier records among the topic's values; one that cannot be read is skipped
    (its dossier is then read from Elements, as for a dossier never synced)."""
    records: list[DossierRecord] = []
    for key, value in values.items():
        if not key.startswith(DOSSIER_PREFIX):
            continue
        try:
            records.append(DossierRecord.model_validate_json(value))
        except ValidationError as error:
            log.warning("state record unreadable; skipped", key=key, errors=error.error_count())
    return records


class StateWriter:
    """Writes records through the worker's broker, retrying transient Kafka errors a few times."""

    def __init__(self, broker: KafkaBroker, topic: str, retry: RetrySettings) -> None:
        self._broker = broker
        self._topic = topic
        self._retry = retry

    async def write(self, key: str, value: bytes) -> None:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(kafka_error_is_transient),
            stop=stop_after_attempt(SAVE_ATTEMPTS),
            wait=exponential_backoff(self._retry),
            reraise=True,
        ):
            with attempt:
                await self._broker.publish(value, topic=self._topic, key=key.encode())

    async def save_dossier(self, record: DossierRecord) -> None:
        await self.write(dossier_key(record.dossier_number), record.model_dump_json().encode())

    async def save_daily_count(self, count: DailyCount) -> None:
        await self.write(DAILY_COUNT_KEY, count.model_dump_json().encode())
