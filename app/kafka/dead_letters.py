"""Dead letters not yet handled, by reason: the gauge `elements_sync_dead_letters_outstanding`,
which the alert ElementsSyncDeadLetters fires on until every letter is handled.

A dead letter counts as handled by the bookkeeping `python -m app dead-letters` and `redrive`
keep (`app.commands.dead_letters`): a mark for it on the state topic, holding its timestamp, or
an offset below the redrive group of before the marks (unfiltered, or of its reason). The
worker follows the state topic anyway, so it keeps the marks as they come (`RedriveMarks`, fed
by `MemoryLoad`); nothing here writes.

Every `DEAD_LETTERS_REFRESH_S` the worker reads what the dead-letter topic gained since, from
the older unfiltered group's offset on (letters below it are handled whatever their reason),
keeps the partition, offset, timestamp and reason of each letter (never its value), and counts
those with no mark and above their reason's older group. Every replica computes the same figure
for the whole topic: the alert takes the highest, never the sum.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from app.commands.dead_letters import REASON, LegacyGroups, Marks, mark_of, read_mark
from app.kafka.connection import client_options
from app.kafka.publisher import header_text
from app.kafka.reading import records_until
from app.settings import KafkaSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Letter:
    partition: int
    offset: int
    timestamp: int
    reason: str


class RedriveMarks:
    """The marks of the dead-letter topic's letters as the state topic holds them, tombstones
    honoured: `read` is given every state-topic record, at start and while following."""

    def __init__(self, topic: str) -> None:
        self._topic = topic
        self.marks: Marks = {}

    def read(self, key: str, value: bytes | None) -> None:
        if (mark := mark_of(self._topic, key, value)) is not None:
            read_mark(self.marks, mark)


def outstanding(
    letters: Iterable[Letter],
    marks: Marks,
    older_groups: Mapping[str, Mapping[int, int]],
) -> Counter[str]:
    """Letters with no mark of their own timestamp and at or above their reason's older
    redrive group (per partition, the first offset it had not redriven; missing: 0), by reason.
    The unfiltered group's letters are left out before (`DeadLetterBacklog`)."""
    counts: Counter[str] = Counter()
    for letter in letters:
        if marks.get(letter.partition, {}).get(letter.offset) == letter.timestamp:
            continue
        if letter.offset < older_groups.get(letter.reason, {}).get(letter.partition, 0):
            continue
        counts[letter.reason] += 1
    return counts


class DeadLetterBacklog:
    """Refreshes the outstanding dead letters in the background and reports each count."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        marks: RedriveMarks,
        report: Callable[[Counter[str]], None],
        *,
        refresh_s: float,
    ) -> None:
        self._kafka = kafka
        self._topic = topic
        self._marks = marks
        self._report = report
        self._refresh_s = refresh_s
        self._letters: list[Letter] = []
        self._read_to: dict[int, int] = {}
        """Where the next refresh reads on from, per partition."""
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def refresh(self) -> Counter[str]:
        """Read what the topic gained, then count what is not handled yet."""
        consumer, admin = await self._clients()
        partitions = [
            TopicPartition(self._topic, p)
            for p in sorted(consumer.partitions_for_topic(self._topic) or ())
        ]
        if not partitions:
            return Counter()
        older = LegacyGroups(admin, self._kafka, partitions)
        unfiltered = await older.below(None)
        begin: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
        end: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        first = {tp.partition: max(begin[tp], unfiltered[tp.partition]) for tp in partitions}
        todo = {
            tp: end[tp]
            for tp in partitions
            if max(self._read_to.get(tp.partition, 0), first[tp.partition]) < end[tp]
        }
        consumer.assign(partitions)
        for tp in todo:
            consumer.seek(tp, max(self._read_to.get(tp.partition, 0), first[tp.partition]))
        found = [
            Letter(
                record.partition,
                record.offset,
                record.timestamp,
                header_text(record.headers or ()).get(REASON, ""),
            )
            async for record in records_until(consumer, todo)
        ]
        self._read_to.update({tp.partition: offset for tp, offset in todo.items()})
        self._letters = [
            letter
            for letter in [*self._letters, *found]
            if letter.offset >= first.get(letter.partition, 0)
        ]
        reasons = sorted({letter.reason for letter in self._letters if letter.reason})
        older_groups = {reason: await older.below(reason) for reason in reasons}
        return outstanding(self._letters, self._marks.marks, older_groups)

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                **client_options(self._kafka),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            await consumer.start()
            self._consumer = consumer
        if self._admin is None:
            admin = AIOKafkaAdminClient(**client_options(self._kafka))
            await admin.start()
            self._admin = admin
        await self._consumer.topics()  # the topic's partitions, fresh
        return self._consumer, self._admin

    async def _refresh_for_ever(self) -> None:
        while True:
            try:
                self._report(await self.refresh())
                if self._failing:
                    log.info("dead letters counted again")
                self._failing = False
            except Exception as error:
                if not self._failing:
                    log.warning(
                        "counting the dead letters failed; retrying",
                        error=f"{type(error).__name__}: {error}",
                    )
                self._failing = True
            await asyncio.sleep(self._refresh_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._refresh_for_ever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        consumer, self._consumer = self._consumer, None
        admin, self._admin = self._admin, None
        try:
            if consumer is not None:
                await consumer.stop()
            if admin is not None:
                await admin.close()
        except asyncio.CancelledError:
            # aiokafka's fetcher lets a fetch to a broker that is gone end this way (as the
            # state topic's reader knows): only a cancellation of our own goes on up
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
