"""`python -m app dead-letters [--reason CODE] [--json]`: the dead letters waiting for a
person, and the bookkeeping of which ones were redriven, which `redrive` shares.

A redrive may take one key's or one reason's letters and leave the others, so "redriven"
belongs to each letter, not to a position in the topic: a committed offset cannot say
"this one, not the one before". Each redriven letter therefore gets a mark of its own, a
record on the state topic under `redriven/<dead-letter topic>/<partition>/<offset>`. The
state topic is compacted and replicated already, the worker passes over keys it does not
know, and one key per letter is never read, changed and written back, so two runs cannot
undo each other's marks. `redrive` writes a letter's mark only once Kafka acknowledged its
re-publish: a crash in between redrives it again (at least once), never skips it. A mark
holds its letter's timestamp and counts only for a letter with that timestamp, so a
dead-letter topic deleted and made again, whose offsets start over, has no letter hidden
by an old mark. Marks of letters that the topic's retention removed are tombstoned by the
next redrive, so they do not pile up beyond the letters' retention. Finding the marks
reads the whole state topic (the worker reads 100,000 dossier records in about 2 s).

Letters redriven before marks existed were bookkept as committed offsets of the groups
`<KAFKA_GROUP_ID>-redrive` (unfiltered runs) and `<KAFKA_GROUP_ID>-redrive-<CODE>`
(`--reason CODE` runs). Reading those offsets costs one request a group, so a letter below
the unfiltered group's offset, or below its own reason's group's, still counts as
redriven; nothing commits to those groups any more.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupAuthorizationFailedError
from aiokafka.structs import OffsetAndMetadata

from app.kafka.connection import client_options
from app.kafka.publisher import header_text
from app.kafka.reading import records_until
from app.kafka.state import REDRIVEN_PREFIX
from app.settings import KafkaSettings, Settings

REASON = "x-dead-letter-reason"
MESSAGE = "x-dead-letter-message"
ORIGINAL_TOPIC = "x-original-topic"
TRUNCATED = "x-dead-letter-truncated"
EVENT_ID = "x-event-id"
COLUMNS = (("time", 20), ("event type", 17), ("key", 20))


def mark_key(topic: str, partition: int, offset: int) -> str:
    """The state topic's key for "the dead letter at topic/partition/offset was redriven"."""
    return f"{REDRIVEN_PREFIX}{topic}/{partition}/{offset}"


def mark_value(letter_timestamp_ms: int, *, redriven_at: datetime, to: str) -> bytes:
    """When the letter was redriven and where to (for a person who looks), and which letter."""
    at = redriven_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return orjson.dumps({"letterTimestamp": letter_timestamp_ms, "redrivenAt": at, "to": to})


def _mark_timestamp(value: bytes) -> int | None:
    """The letter timestamp a mark holds; None for a value that is not a mark of ours."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    stamp = document.get("letterTimestamp") if isinstance(document, dict) else None
    return stamp if isinstance(stamp, int) else None


def _marked(key: str, topic: str) -> tuple[int, int] | None:
    """(partition, offset) of a mark of `topic`'s letters; None for any other key."""
    prefix = f"{REDRIVEN_PREFIX}{topic}/"
    if not key.startswith(prefix):
        return None
    partition, _, offset = key.removeprefix(prefix).partition("/")
    if not (partition.isdigit() and offset.isdigit()):
        return None
    return int(partition), int(offset)


def mark_of(topic: str, key: str, value: bytes | None) -> tuple[int, int, int | None] | None:
    """(partition, offset, the letter's timestamp) of a state-topic record that marks one of
    `topic`'s letters, the timestamp None when the record takes the mark away (a tombstone, or a
    value that is no mark); None for a record of any other key. The worker's count of the
    letters not yet redriven (`app.kafka.dead_letters`) reads the marks with this too."""
    where = _marked(key, topic)
    if where is None:
        return None
    stamp = _mark_timestamp(value) if value is not None else None
    return where[0], where[1], stamp


Marks = dict[int, dict[int, int]]
"""Per partition of the dead-letter topic, the offsets of the letters marked redriven, each
with the timestamp of the letter its mark was written for."""


def expired_marks(topic: str, marks: Marks, first: Mapping[int, int]) -> list[str]:
    """Keys of the marks whose letter is gone: below its partition's first offset (the
    retention removed it), or of a partition the topic no longer has."""
    return [
        mark_key(topic, partition, offset)
        for partition, offsets in sorted(marks.items())
        for offset in sorted(offsets)
        if partition not in first or offset < first[partition]
    ]


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as the dead-lettering wrote it (`app.kafka.publisher`)."""

    record: ConsumerRecord[Any, Any]
    reason: str
    key: str | None
    event_type: str | None
    event_id: str | None
    message: str
    original_topic: str
    truncated: bool
    time: datetime

    @classmethod
    def of(cls, record: ConsumerRecord[Any, Any]) -> DeadLetter:
        headers = header_text(record.headers or ())
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        return cls(
            record=record,
            reason=headers.get(REASON, ""),
            key=key,
            event_type=_event_type(record.value),
            event_id=headers.get(EVENT_ID) or None,
            message=headers.get(MESSAGE, ""),
            original_topic=headers.get(ORIGINAL_TOPIC, ""),
            truncated=TRUNCATED in headers,
            time=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        )

    @property
    def partition(self) -> int:
        return int(self.record.partition)

    @property
    def offset(self) -> int:
        return int(self.record.offset)

    @property
    def at(self) -> str:
        """Where it lies: `topic/partition/offset`."""
        return f"{self.record.topic}/{self.record.partition}/{self.record.offset}"

    @property
    def why_not_redrivable(self) -> str | None:
        """Why re-publishing it would not give the original back; None when it would."""
        if self.truncated:
            return "value cut to fit the dead-letter topic"
        if not self.original_topic:
            return f"no {ORIGINAL_TOPIC} header"
        return None

    def line(self) -> str:
        time = self.time.strftime("%Y-%m-%d %H:%M:%SZ")
        cells = [time, self.event_type or "-", self.key if self.key is not None else "-"]
        text = "  ".join(cell.ljust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True))
        text += f"  {self.reason or '-'}"
        if (why := self.why_not_redrivable) is not None:
            text += f"  (cannot be redriven: {why})"
        return text

    def as_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "eventType": self.event_type,
            "reason": self.reason or None,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "eventId": self.event_id,
            "message": self.message,
            "originalTopic": self.original_topic or None,
            "at": self.at,
            "redrivable": self.why_not_redrivable is None,
        }


HEADER = "  ".join(name.ljust(width) for name, width in COLUMNS) + "  reason"


def _event_type(value: bytes | None) -> str | None:
    """The input's CloudEvents `type`, when its bytes are a JSON object that names one."""
    try:
        document = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    kind = document.get("type") if isinstance(document, dict) else None
    return kind if isinstance(kind, str) else None


@dataclass(frozen=True)
class Selection:
    """Which letters a command takes: all, or those of one reason and/or one key."""

    reason: str | None = None
    key: str | None = None

    def takes(self, letter: DeadLetter) -> bool:
        return (self.reason is None or letter.reason == self.reason) and (
            self.key is None or letter.key == self.key
        )


@dataclass(frozen=True)
class Waiting:
    """The selected letters not redriven before, and what a redrive needs to tidy the marks."""

    letters: list[DeadLetter]
    marks: Marks
    first: dict[int, int]
    """Per partition of the dead-letter topic, its first offset (what retention left)."""


class LegacyGroups:
    """Committed offsets of the groups redrive used before marks, read once each on demand."""

    def __init__(
        self, admin: AIOKafkaAdminClient, kafka: KafkaSettings, partitions: list[TopicPartition]
    ) -> None:
        self._admin = admin
        self._base = f"{kafka.group_id}-redrive"
        self._partitions = partitions
        self._known: dict[str | None, dict[int, int]] = {}

    async def below(self, reason: str | None) -> dict[int, int]:
        """Per partition, the offset below which the group (of `reason`, or the unfiltered
        one) redrove every letter it took; 0 when it never did."""
        if reason not in self._known:
            group = self._base if reason is None else f"{self._base}-{reason}"
            try:
                committed: dict[
                    TopicPartition, OffsetAndMetadata
                ] = await self._admin.list_consumer_group_offsets(
                    group, partitions=self._partitions
                )
            except GroupAuthorizationFailedError:
                committed = {}  # a principal never granted the group never redrove with it
            self._known[reason] = {
                tp.partition: max(committed[tp].offset, 0) if tp in committed else 0
                for tp in self._partitions
            }
        return self._known[reason]


@dataclass(frozen=True)
class Reader:
    consumer: AIOKafkaConsumer
    admin: AIOKafkaAdminClient


@asynccontextmanager
async def kafka_readers(kafka: KafkaSettings) -> AsyncIterator[Reader]:
    """A consumer without a group (it commits nothing) and an admin client, closed on exit
    also when they could not start."""
    options = client_options(kafka)
    consumer = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(**options)
    try:
        await consumer.start()
        await admin.start()
        yield Reader(consumer, admin)
    finally:
        try:
            await admin.close()
        finally:
            await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions (none when it does not exist)."""
    if topic not in await consumer.topics():
        return []
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


async def read_marks(consumer: AIOKafkaConsumer, state_topic: str, topic: str) -> Marks:
    """The marks of `topic`'s letters on the state topic, tombstones honoured."""
    partitions = await _partitions(consumer, state_topic)
    marks: Marks = {}
    if not partitions:
        return marks
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    end = await consumer.end_offsets(partitions)
    async for record in records_until(consumer, end):
        key = record.key.decode("utf-8", "replace") if record.key else ""
        if (mark := mark_of(topic, key, record.value)) is not None:
            read_mark(marks, mark)
    return marks


def read_mark(marks: Marks, mark: tuple[int, int, int | None]) -> None:
    """Keep a mark `mark_of` read, or take it away."""
    partition, offset, stamp = mark
    offsets = marks.setdefault(partition, {})
    if stamp is None:
        offsets.pop(offset, None)
    else:
        offsets[offset] = stamp


async def waiting(reader: Reader, settings: Settings, selection: Selection) -> Waiting:
    """The selected dead letters not redriven before, in partition and offset order, up to
    the end offsets taken when called (what is dead-lettered meanwhile waits for the next run)."""
    consumer, topic = reader.consumer, settings.topics.dead_letter
    partitions = await _partitions(consumer, topic)
    if not partitions:
        return Waiting([], {}, {})
    end: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    beginning: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
    marks = await read_marks(consumer, settings.topics.state, topic)
    legacy = LegacyGroups(reader.admin, settings.kafka, partitions)
    unfiltered = await legacy.below(None)
    start = {tp: max(beginning[tp], unfiltered[tp.partition]) for tp in partitions}
    todo = [tp for tp in partitions if start[tp] < end[tp]]
    letters: list[DeadLetter] = []
    if todo:
        consumer.assign(todo)
        for tp in todo:
            consumer.seek(tp, start[tp])
        async for record in records_until(consumer, {tp: end[tp] for tp in todo}):
            if marks.get(record.partition, {}).get(record.offset) == record.timestamp:
                continue
            letter = DeadLetter.of(record)
            if selection.takes(letter) and not await _redriven_before(legacy, letter):
                letters.append(letter)
    letters.sort(key=lambda letter: (letter.partition, letter.offset))
    return Waiting(letters, marks, {tp.partition: beginning[tp] for tp in partitions})


async def _redriven_before(legacy: LegacyGroups, letter: DeadLetter) -> bool:
    """Redriven by a `--reason` run of the offset groups (the unfiltered one is the start)."""
    if not letter.reason:
        return False
    return letter.offset < (await legacy.below(letter.reason))[letter.partition]


def count_line(count: int, *, as_json: bool) -> str:
    return orjson.dumps({"count": count}).decode() if as_json else f"dead letters: {count}"


def lines(letters: Iterable[DeadLetter], *, as_json: bool) -> list[str]:
    """One line per letter (a header first), or one JSON object per line; then how many."""
    letters = list(letters)
    if as_json:
        shown = [orjson.dumps(letter.as_json()).decode() for letter in letters]
    else:
        shown = [HEADER, *(letter.line() for letter in letters)]
    return [*shown, count_line(len(letters), as_json=as_json)]


async def run_dead_letters(settings: Settings, *, reason: str | None, as_json: bool) -> int:
    async with kafka_readers(settings.kafka) as reader:
        found = await waiting(reader, settings, Selection(reason=reason))
    in_time_order = sorted(found.letters, key=lambda letter: letter.time)
    for line in lines(in_time_order, as_json=as_json):
        print(line)
    sys.stdout.flush()
    return 0
