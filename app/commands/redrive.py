"""`python -m app redrive [--reason CODE]`: dead letters back to their original topics.

What has been redriven is remembered in Kafka, as committed offsets of consumer groups
of the command's own (never the worker's): `<KAFKA_GROUP_ID>-redrive` for unfiltered
runs and `<KAFKA_GROUP_ID>-redrive-<CODE>` for runs with `--reason CODE`. A dead letter
at offset o with reason R counts as redriven when o is below the committed offset of
either group, so:

- an unfiltered run reads each partition from its group's offset and skips the letters
  a `--reason R` run already redrove (below R's group offset);
- a `--reason R` run reads from the higher of its own and the unfiltered group's offset,
  so it neither repeats what an unfiltered run redrove nor skips any R letter;
- letters of other reasons a filtered run passes over are left to the unfiltered group,
  which has not moved: nothing is skipped for ever, and nothing is redriven twice.

Each run reads up to the end offsets taken when it starts (dead letters of the redriven
events that fail again land after them, for a later run), re-publishes with the
original key, value and headers (the dead-lettering's own `x-dead-letter-*`,
`x-original-*` and `x-event-id` headers removed, `x-redriven-from` added), and commits
only once Kafka acknowledged every re-publish: a crash in between redrives those letters
again on the next run (at least once). A dead letter whose value was cut to fit
(`x-dead-letter-truncated`) or that names no original topic cannot be redriven; it is
counted as skipped and passed over.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from app.kafka.connection import client_options, producer_options
from app.kafka.publisher import header_text
from app.kafka.reading import records_until
from app.settings import KafkaSettings, Settings

REASON = "x-dead-letter-reason"
ORIGINAL_TOPIC = "x-original-topic"
TRUNCATED = "x-dead-letter-truncated"
REDRIVEN_FROM = "x-redriven-from"
DEAD_LETTERING_HEADERS = ("x-dead-letter-", "x-original-", "x-event-id")
"""Prefixes of the headers the dead-lettering added (`app.kafka.publisher`)."""

Headers = list[tuple[str, bytes]]


def redrive_group(kafka: KafkaSettings, reason: str | None) -> str:
    base = f"{kafka.group_id}-redrive"
    return base if reason is None else f"{base}-{reason}"


def redriven_headers(
    headers: Sequence[tuple[str, bytes]], source: TopicPartition, offset: int
) -> Headers:
    """The original message's headers again, and where the redrive took it from."""
    kept = [(k, v) for k, v in headers if not k.startswith(DEAD_LETTERING_HEADERS)]
    return [*kept, (REDRIVEN_FROM, f"{source.topic}/{source.partition}/{offset}".encode())]


@dataclass
class Tally:
    """What a run did, per reason."""

    redriven: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        lines = [f"{reason}: {count}" for reason, count in sorted(self.redriven.items())]
        lines.append(f"redriven: {self.redriven.total()}")
        lines.extend(
            f"skipped (cannot be redriven: {why}): {count}"
            for why, count in sorted(self.skipped.items())
        )
        return lines


class Positions:
    """Committed offsets of the redrive groups, read on demand (one admin request a group)."""

    def __init__(
        self, admin: AIOKafkaAdminClient, kafka: KafkaSettings, partitions: list[TopicPartition]
    ) -> None:
        self._admin = admin
        self._kafka = kafka
        self._partitions = partitions
        self._known: dict[str | None, dict[TopicPartition, int]] = {}

    async def of(self, reason: str | None) -> dict[TopicPartition, int]:
        """Per partition, the first offset the group has not redriven (0 when none)."""
        if reason not in self._known:
            committed: dict[
                TopicPartition, OffsetAndMetadata
            ] = await self._admin.list_consumer_group_offsets(
                redrive_group(self._kafka, reason), partitions=self._partitions
            )
            self._known[reason] = {
                tp: max(committed[tp].offset, 0) if tp in committed else 0
                for tp in self._partitions
            }
        return self._known[reason]


async def redrive(settings: Settings, *, reason: str | None = None) -> Tally:
    """Redrive the dead letters not redriven before (of `reason`, or all); see the module."""
    kafka, topic = settings.kafka, settings.topics.dead_letter
    config = client_options(kafka)
    admin = AIOKafkaAdminClient(**config)
    consumer = AIOKafkaConsumer(
        **config, group_id=redrive_group(kafka, reason), enable_auto_commit=False
    )
    producer = AIOKafkaProducer(**config, **producer_options(kafka))
    await admin.start()
    try:
        await consumer.start()
        try:
            await producer.start()
            try:
                return await _redrive(admin, consumer, producer, settings, topic, reason)
            finally:
                await producer.stop()
        finally:
            await consumer.stop()
    finally:
        await admin.close()


async def _redrive(
    admin: AIOKafkaAdminClient,
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    settings: Settings,
    topic: str,
    reason: str | None,
) -> Tally:
    partitions = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
    positions = Positions(admin, settings.kafka, partitions)
    start = await _start_offsets(positions, partitions, reason)
    end: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    todo = [tp for tp in partitions if start[tp] < end[tp]]
    tally = Tally()
    if not todo:
        return tally
    consumer.assign(todo)
    for tp in todo:
        consumer.seek(tp, start[tp])
    sent: list[asyncio.Future[Any]] = []
    async for record in records_until(consumer, {tp: end[tp] for tp in todo}):
        letter_reason = header_text(record.headers or ()).get(REASON, "")
        if reason is not None and letter_reason != reason:
            continue
        if reason is None and record.offset < (await positions.of(letter_reason))[_tp(record)]:
            continue
        future = await _republish(producer, record, tally, letter_reason)
        if future is not None:
            sent.append(future)
    await asyncio.gather(*sent)
    await consumer.commit({tp: end[tp] for tp in todo})
    return tally


def _tp(record: ConsumerRecord[Any, Any]) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The dead-letter topic's partitions (none when it does not exist yet)."""
    if topic not in await consumer.topics():
        return set()
    return consumer.partitions_for_topic(topic) or set()


async def _start_offsets(
    positions: Positions, partitions: list[TopicPartition], reason: str | None
) -> dict[TopicPartition, int]:
    unfiltered = await positions.of(None)
    if reason is None:
        return unfiltered
    own = await positions.of(reason)
    return {tp: max(own[tp], unfiltered[tp]) for tp in partitions}


async def _republish(
    producer: AIOKafkaProducer, record: ConsumerRecord[Any, Any], tally: Tally, reason: str
) -> asyncio.Future[Any] | None:
    """Send one dead letter back; the future resolves once Kafka acknowledged it."""
    headers = header_text(record.headers or ())
    if TRUNCATED in headers:
        tally.skipped["value cut to fit the dead-letter topic"] += 1
        return None
    original = headers.get(ORIGINAL_TOPIC, "")
    if not original:
        tally.skipped[f"no {ORIGINAL_TOPIC} header"] += 1
        return None
    raw = [(k, v or b"") for k, v in (record.headers or ())]
    future: asyncio.Future[Any] = await producer.send(
        original,
        record.value,
        key=record.key,
        headers=redriven_headers(raw, _tp(record), record.offset),
    )
    tally.redriven[reason or "(no reason)"] += 1
    return future


async def run_redrive(settings: Settings, *, reason: str | None) -> int:
    tally = await redrive(settings, reason=reason)
    for line in tally.lines():
        print(line)
    sys.stdout.flush()
    return 0
