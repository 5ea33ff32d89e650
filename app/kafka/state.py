"""The state topic: the worker's durable memory, one compacted record per key.

Keys name what a record is about: `dossier/<dossier number>` for a dossier's record
(`app.state.record`), `medewerker/<dossier number>` for a medewerker the worker created in
it, `limiter/daily-count` for the day's Elements count; `redriven/…` marks are
`python -m app redrive`'s (`app.commands.dead_letters`), and the worker passes over them. The whole
topic is read before the worker consumes its first event, so every event starts
from what the last worker knew, and followed while it runs (`StateTopic`); records are
written with `acks=all` and awaited. Writing a dossier's record is a step boundary of the
event that writes it (`app.event_stop`): a handed-over event writes no record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from faststream.kafka import KafkaBroker

from app.errors import TopicSetupError
from app.kafka.connection import client_options
from app.kafka.publisher import kafka_error_is_transient
from app.kafka.reading import records_until
from app.retry import exponential_backoff, retrying_on
from app.settings import KafkaSettings, RetrySettings
from app.state.daily_count import DailyCount

log = structlog.get_logger(__name__)

DOSSIER_PREFIX = "dossier/"
MEDEWERKER_PREFIX = "medewerker/"
DAILY_COUNT_KEY = "limiter/daily-count"
REDRIVEN_PREFIX = "redriven/"
PROBE_KEY = "probe/writable"
"""Written only to learn that the topic takes writes again after it did not."""
SAVE_ATTEMPTS = 3


def dossier_key(dossier_number: str) -> str:
    return DOSSIER_PREFIX + dossier_number


OnRecord = Callable[[str, bytes | None], None]


class StateTopic:
    """Reads the state topic: all of it before consuming starts (`load`), then follows it
    (`follow`), so records that other replicas write reach this one's memory.

    A dossier moves to this replica when the consumer group rebalances; `caught_up`
    returns once every record written before it was called has been read, and the
    consumer awaits it before it takes messages of newly assigned partitions — so the
    replica never plans from an older record than the one the previous owner wrote.
    """

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self._kafka = kafka
        self._topic = topic
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._following: asyncio.Task[None] | None = None
        self._batches = 0

    async def load(self, *, timeout_s: float) -> dict[str, bytes]:
        """The latest value of every key; a key whose latest value is a tombstone is left out."""
        consumer = AIOKafkaConsumer(
            **client_options(self._kafka), group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        self._consumer = consumer
        latest: dict[str, bytes | None] = {}
        async with asyncio.timeout(timeout_s):
            self._partitions = [
                TopicPartition(self._topic, p)
                for p in sorted(await _partitions(consumer, self._topic))
            ]
            consumer.assign(self._partitions)
            await consumer.seek_to_beginning(*self._partitions)
            end = await consumer.end_offsets(self._partitions)
            async for record in records_until(consumer, end):
                if record.key is not None:
                    latest[record.key.decode("utf-8", "replace")] = record.value
        return {key: value for key, value in latest.items() if value is not None}

    def follow(self, on_record: OnRecord) -> None:
        """Keep reading in the background, handing each record to `on_record`."""

        async def follow() -> None:
            while True:
                try:
                    await self._read_batch(on_record)
                    self._batches += 1
                except Exception as error:
                    log.warning("reading the state topic failed; retrying", error=str(error))
                    await asyncio.sleep(1.0)

        self._following = asyncio.create_task(follow())

    async def caught_up(self, *, timeout_s: float) -> None:
        """Return once every record written before the call has been read: two more fetches
        of the follower have ended (the second began after the call) and its position is
        at the partitions' high watermark. After `timeout_s` it returns with a warning."""
        if self._consumer is None or self._following is None:
            return
        seen = self._batches
        try:
            async with asyncio.timeout(timeout_s):
                while self._batches < seen + 2 or not await self._at_high_watermark():
                    if self._following is None:  # closed meanwhile: the worker is stopping
                        return
                    await asyncio.sleep(0.02)
        except TimeoutError:
            log.warning(
                "state topic not caught up in time",
                timeout_s=timeout_s,
                fetches=self._batches - seen,
            )

    async def _at_high_watermark(self) -> bool:
        if self._consumer is None:
            return True
        for partition in self._partitions:
            highwater = self._consumer.highwater(partition)
            if highwater is not None and await self._consumer.position(partition) < highwater:
                return False
        return True

    async def _read_batch(self, on_record: OnRecord) -> None:
        assert self._consumer is not None
        batch = await self._consumer.getmany(*self._partitions, timeout_ms=200)
        for records in batch.values():
            for record in records:
                if record.key is not None:
                    on_record(record.key.decode("utf-8", "replace"), record.value)

    async def close(self) -> None:
        if self._following is not None:
            self._following.cancel()
            await asyncio.gather(self._following, return_exceptions=True)
            self._following = None
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except asyncio.CancelledError:
                # aiokafka's fetcher lets a fetch to a broker that is gone end this way
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer.topics()  # fetches the cluster's metadata
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise TopicSetupError(f"the state topic {topic} does not exist (yet)")
    return set(partitions)


def dossier_values(
    values: dict[str, bytes], prefix: str = DOSSIER_PREFIX
) -> Iterator[tuple[str, bytes]]:
    """(dossier number, bytes) of every dossier record among the topic's values, or with
    `prefix` of every other kind of value kept per dossier."""
    for key, value in values.items():
        if key.startswith(prefix):
            yield key.removeprefix(prefix), value


class StateWriter:
    """Writes records through the worker's broker, retrying transient Kafka errors a few times.

    `unavailable` is true from a write Kafka did not take until one it took: intake pauses
    meanwhile (`state_unavailable`), since no event that writes to Elements can keep its
    record durable, and `writable()` waits for that, probing with a write of its own (a
    probe runs from the first failed write on, so the pause ends by itself).
    """

    def __init__(self, broker: KafkaBroker, topic: str, retry: RetrySettings) -> None:
        self._broker = broker
        self._topic = topic
        self._retry = retry
        self.unavailable = False
        self._probing: asyncio.Task[None] | None = None
        """Probes the topic while it is unavailable: intake is paused meanwhile, so no event
        may be there to find out that it takes writes again."""

    async def write(self, key: str, value: bytes) -> None:
        try:
            async for attempt in retrying_on(
                kafka_error_is_transient, wait=exponential_backoff(self._retry), stop=SAVE_ATTEMPTS
            ):
                with attempt:
                    await self._broker.publish(value, topic=self._topic, key=key.encode())
        except Exception:
            if not self.unavailable:
                self.unavailable = True
                self._probing = asyncio.get_running_loop().create_task(self.writable())
            raise
        self.unavailable = False

    async def writable(self) -> None:
        """Return once the state topic takes a write again (at once while it does)."""
        if not self.unavailable:
            return
        async for attempt in retrying_on(
            Exception,
            wait=exponential_backoff(self._retry),
            on_retry=lambda _, number: log.warning(
                "the state topic takes no write; waiting", attempt=number
            ),
        ):
            with attempt:
                await self.write(PROBE_KEY, b"{}")

    async def save_dossier(self, dossier_number: str, value: bytes) -> None:
        await self.write(dossier_key(dossier_number), value)

    async def save_medewerker(self, dossier_number: str, value: bytes) -> None:
        await self.write(MEDEWERKER_PREFIX + dossier_number, value)

    async def close(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
            await asyncio.gather(self._probing, return_exceptions=True)
            self._probing = None

    async def save_daily_count(self, count: DailyCount) -> None:
        await self.write(DAILY_COUNT_KEY, count.model_dump_json().encode())
