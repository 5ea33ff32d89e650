"""Dead letters not yet handled, by reason: the gauge `elements_sync_dead_letters_outstanding`,
which the alert ElementsSyncDeadLetters fires on until every letter is handled.

A dead letter counts as handled by the redrive bookkeeping's own rule (`app.commands.redrive`):
its offset is below the committed offset of the unfiltered redrive group or of its reason's
group. `python -m app redrive` moves them; so does an operator who dismisses a reason's letters
by moving that reason's group to the end of the topic (README, runbook of the alert). Nothing
here writes: the worker only reads the dead-letter topic and the groups' committed offsets.

Every `DEAD_LETTERS_REFRESH_S` the worker reads what the topic gained since, from the
unfiltered group's offset on (older letters are handled whatever their reason), keeps the
partition, offset and reason of each letter (never its value), and asks the committed offsets
of the groups of the reasons it holds letters of. Every replica computes the same figure for
the whole topic: the alert takes the highest, never the sum.
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

from app.commands.redrive import REASON, Positions
from app.kafka.connection import client_options
from app.kafka.publisher import header_text
from app.kafka.reading import records_until
from app.settings import KafkaSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Letter:
    partition: int
    offset: int
    reason: str


def outstanding(
    letters: Iterable[Letter],
    unfiltered: Mapping[int, int],
    by_reason: Mapping[str, Mapping[int, int]],
) -> Counter[str]:
    """Letters at or above both their partition's unfiltered redrive offset and their reason's
    (each offset: the first not handled; a missing one is 0), counted by reason."""
    counts: Counter[str] = Counter()
    for letter in letters:
        done_below = max(
            unfiltered.get(letter.partition, 0),
            by_reason.get(letter.reason, {}).get(letter.partition, 0),
        )
        if letter.offset >= done_below:
            counts[letter.reason] += 1
    return counts


class DeadLetterBacklog:
    """Refreshes the outstanding dead letters in the background and reports each count."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        report: Callable[[Counter[str]], None],
        *,
        refresh_s: float,
    ) -> None:
        self._kafka = kafka
        self._topic = topic
        self._report = report
        self._refresh_s = refresh_s
        self._letters: list[Letter] = []
        self._read_to: dict[TopicPartition, int] = {}
        """Where the next refresh reads on from, per partition."""
        self._kept_from: dict[TopicPartition, int] = {}
        """The unfiltered group's offsets when last asked: letters below them were dropped."""
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
        positions = Positions(admin, self._kafka, partitions)
        unfiltered = await positions.of(None)
        begin: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
        end: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        for tp in partitions:
            if unfiltered[tp] < self._kept_from.get(tp, 0):  # an operator moved it back
                self._read_to.pop(tp, None)
                self._letters = [x for x in self._letters if x.partition != tp.partition]
        self._kept_from = dict(unfiltered)
        start = {tp: max(self._read_to.get(tp, 0), unfiltered[tp], begin[tp]) for tp in partitions}
        todo = {tp: end[tp] for tp in partitions if start[tp] < end[tp]}
        consumer.assign(partitions)
        for tp in todo:
            consumer.seek(tp, start[tp])
        found = [
            Letter(
                record.partition, record.offset, header_text(record.headers or ()).get(REASON, "")
            )
            async for record in records_until(consumer, todo)
        ]
        self._read_to.update(todo)
        self._letters = [
            letter
            for letter in [*self._letters, *found]
            if letter.offset >= max(unfiltered[self._tp(letter)], begin[self._tp(letter)])
        ]
        reasons = sorted({letter.reason for letter in self._letters if letter.reason})
        by_reason = {reason: await positions.of(reason) for reason in reasons}
        return outstanding(
            self._letters,
            {tp.partition: offset for tp, offset in unfiltered.items()},
            {r: {tp.partition: o for tp, o in offs.items()} for r, offs in by_reason.items()},
        )

    def _tp(self, letter: Letter) -> TopicPartition:
        return TopicPartition(self._topic, letter.partition)

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
