"""`python -m app redrive [--reason CODE] [--key KEY] [--dry-run]`: dead letters back to
their original topics, each once.

Which letters were redriven is a mark per letter on the state topic (why, and how letters
redriven by the older offset groups still count: `app.commands.dead_letters`). A run
takes the letters not marked, up to the end offsets taken when it starts (dead letters of
the redriven events that fail again land after them, for a later run), and re-publishes
them in batches with the original key, value and headers (the dead-lettering's own
`x-dead-letter-*`, `x-original-*` and `x-event-id` headers removed, `x-redriven-from`
added). It marks a batch's letters only once Kafka acknowledged every re-publish of the
batch: a crash in between redrives them again on the next run (at least once), and
nothing is ever skipped. A dead letter whose value was cut to fit
(`x-dead-letter-truncated`) or that names no original topic cannot be redriven; it is
counted as skipped, left unmarked, and stays listed by `dead-letters`.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata

from app.commands.dead_letters import (
    HEADER,
    DeadLetter,
    Selection,
    expired_marks,
    kafka_readers,
    mark_key,
    mark_value,
    waiting,
)
from app.errors import TopicSetupError
from app.kafka.connection import client_options, producer_options
from app.settings import KafkaSettings, Settings

REDRIVEN_FROM = "x-redriven-from"
DEAD_LETTERING_HEADERS = ("x-dead-letter-", "x-original-", "x-event-id")
"""Prefixes of the headers the dead-lettering added (`app.kafka.publisher`)."""
BATCH = 500
"""Letters re-published before waiting for Kafka's acknowledgements and marking them."""

Headers = list[tuple[str, bytes]]


def redriven_headers(
    headers: Sequence[tuple[str, bytes]], source: TopicPartition, offset: int
) -> Headers:
    """The original message's headers again, and where the redrive took it from."""
    kept = [(k, v) for k, v in headers if not k.startswith(DEAD_LETTERING_HEADERS)]
    return [*kept, (REDRIVEN_FROM, f"{source.topic}/{source.partition}/{offset}".encode())]


@dataclass
class Tally:
    """What a run did (or, dry, would do), per reason."""

    redriven: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    letters: list[DeadLetter] = field(default_factory=list)
    """The letters it redrove (or would)."""

    def count(self, letter: DeadLetter) -> None:
        why = letter.why_not_redrivable
        if why is not None:
            self.skipped[why] += 1
            return
        self.redriven[letter.reason or "(no reason)"] += 1
        self.letters.append(letter)

    def lines(self, *, dry_run: bool = False) -> list[str]:
        lines = [f"{reason}: {count}" for reason, count in sorted(self.redriven.items())]
        total = self.redriven.total()
        lines.append(
            f"would redrive: {total} (dry run: nothing published or marked)"
            if dry_run
            else f"redriven: {total}"
        )
        lines.extend(
            f"skipped (cannot be redriven: {why}): {count}"
            for why, count in sorted(self.skipped.items())
        )
        return lines


@asynccontextmanager
async def _producer(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(**client_options(kafka), **producer_options(kafka))
    try:
        await producer.start()
        yield producer
    finally:
        await producer.stop()


async def redrive(
    settings: Settings, *, selection: Selection | None = None, dry_run: bool = False
) -> Tally:
    """Redrive the selected dead letters not redriven before; see the module."""
    async with kafka_readers(settings.kafka) as reader:
        found = await waiting(reader, settings, selection or Selection())
        tally = Tally()
        for letter in found.letters:
            tally.count(letter)
        todo = tally.letters
        expired = expired_marks(settings.topics.dead_letter, found.marks, found.first)
        if dry_run or not (todo or expired):
            return tally
        if settings.topics.state not in await reader.consumer.topics():
            raise TopicSetupError(
                f"the state topic {settings.topics.state} does not exist: "
                "redrive marks there what it redrove"
            )
    async with _producer(settings.kafka) as producer:
        for start in range(0, len(todo), BATCH):
            await _redrive_batch(producer, settings, todo[start : start + BATCH])
        await asyncio.gather(
            *[await producer.send(settings.topics.state, None, key=k.encode()) for k in expired]
        )
    return tally


async def _redrive_batch(
    producer: AIOKafkaProducer, settings: Settings, letters: list[DeadLetter]
) -> None:
    """Re-publish, await every acknowledgement, then mark (and await the marks)."""
    sent: list[asyncio.Future[RecordMetadata]] = [
        await _republish(producer, letter) for letter in letters
    ]
    landed = await asyncio.gather(*sent)
    now = datetime.now(UTC)
    marked = [
        await producer.send(
            settings.topics.state,
            mark_value(
                letter.record.timestamp,
                redriven_at=now,
                to=f"{to.topic}/{to.partition}/{to.offset}",
            ),
            key=mark_key(letter.record.topic, letter.partition, letter.offset).encode(),
        )
        for letter, to in zip(letters, landed, strict=True)
    ]
    await asyncio.gather(*marked)


async def _republish(
    producer: AIOKafkaProducer, letter: DeadLetter
) -> asyncio.Future[RecordMetadata]:
    """Send one dead letter back; the future resolves once Kafka acknowledged it."""
    record = letter.record
    raw = [(k, v or b"") for k, v in (record.headers or ())]
    source = TopicPartition(record.topic, record.partition)
    future: asyncio.Future[RecordMetadata] = await producer.send(
        letter.original_topic,
        record.value,
        key=record.key,
        headers=redriven_headers(raw, source, record.offset),
    )
    return future


async def run_redrive(
    settings: Settings, *, reason: str | None, key: str | None, dry_run: bool
) -> int:
    tally = await redrive(settings, selection=Selection(reason=reason, key=key), dry_run=dry_run)
    if dry_run:
        print(HEADER)
        for letter in tally.letters:
            print(f"{letter.line()}  -> {letter.original_topic}")
    for line in tally.lines(dry_run=dry_run):
        print(line)
    sys.stdout.flush()
    return 0
