"""`python -m app results [--since DURATION] [--follow]`: the result topic, readable.

Reads every partition of `TOPIC_RESULTS` from the first result at or after now minus
DURATION (`offsets_for_times`) up to the end offsets taken at start, prints one row per
result in time order, then the counts by status and by error code. With `--follow` it
goes on printing results as they arrive until SIGINT/SIGTERM, then prints the counts
of everything it showed and exits 0. It reads without a consumer group: nothing is
committed, and any number of operators may watch at once.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from app.events import ResultEvent
from app.kafka.connection import client_options
from app.kafka.reading import FETCH_TIMEOUT_MS, records_until
from app.settings import Settings
from app.signals import stop_on_signals

DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
COLUMNS = (("time", 20), ("event type", 17), ("key", 20), ("status", 9), ("writes", 6))
UNREADABLE = "unreadable"


def parse_duration(text: str) -> timedelta:
    """`30m`, `2h`, `1d`, `90s`: how far back to read."""
    match = DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30m, 2h, 1d)")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


@dataclass(frozen=True)
class Row:
    time: datetime
    event_type: str
    key: str
    status: str
    writes: int
    error_code: str

    @classmethod
    def of(cls, record: ConsumerRecord[Any, Any]) -> Row:
        key = (record.key or b"").decode("utf-8", "replace")
        try:
            result = ResultEvent.model_validate_json(record.value or b"")
        except ValidationError:
            received = datetime.fromtimestamp(record.timestamp / 1000, UTC)
            return cls(received, "-", key, UNREADABLE, 0, "")
        data = result.data
        code = data.error.code if data.error is not None else ""
        return cls(result.time, data.eventType or "-", key, data.status, len(data.operations), code)

    def line(self) -> str:
        time = self.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        cells = (time, self.event_type, self.key, self.status, str(self.writes))
        return _line((*cells, self.error_code))


def _line(cells: Iterable[str]) -> str:
    widths = [width for _, width in COLUMNS]
    parts = [cell.ljust(widths[i]) if i < len(widths) else cell for i, cell in enumerate(cells)]
    return "  ".join(parts).rstrip()


HEADER = _line((*(name for name, _ in COLUMNS), "error code"))


def _ranked(counter: Counter[str]) -> str:
    """Most frequent first, ties by name: `failed 2, rejected 1`, or `-` when none."""
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} {count}" for name, count in ranked) or "-"


def counts(rows: Iterable[Row]) -> list[str]:
    """The summary: how many, by status and by error code."""
    rows = list(rows)
    return [
        f"results: {len(rows)}",
        "by status: " + _ranked(Counter(row.status for row in rows)),
        "by error code: " + _ranked(Counter(row.error_code for row in rows if row.error_code)),
    ]


def _say(line: str) -> None:
    print(line, flush=True)


async def _start(
    consumer: AIOKafkaConsumer, topic: str, since: datetime
) -> dict[TopicPartition, int]:
    """Assign every partition at the first result at or after `since`; returns the end offsets."""
    partitions = consumer.partitions_for_topic(topic) if topic in await consumer.topics() else None
    assigned = [TopicPartition(topic, p) for p in sorted(partitions or ())]
    if not assigned:
        return {}
    consumer.assign(assigned)
    end: dict[TopicPartition, int] = await consumer.end_offsets(assigned)
    at = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in assigned})
    for tp in assigned:
        found = at.get(tp)
        # No result that recent: Kafka answers None, the embedded broker offset 0 at time -1.
        recent = found is not None and found.timestamp >= 0
        consumer.seek(tp, found.offset if found is not None and recent else end[tp])
    return end


async def _until_end(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> list[Row]:
    rows = [Row.of(record) async for record in records_until(consumer, end)]
    return sorted(rows, key=lambda row: row.time)


async def _follow(consumer: AIOKafkaConsumer, rows: list[Row], stop: asyncio.Event) -> None:
    """Print results as they arrive until `stop` is set."""
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS)
        for records in batch.values():
            for record in records:
                row = Row.of(record)
                rows.append(row)
                _say(row.line())


async def show_results(settings: Settings, *, since: timedelta, follow: bool) -> None:
    start = datetime.now(UTC) - since
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka), group_id=None, enable_auto_commit=False
    )
    stop = stop_on_signals() if follow else asyncio.Event()
    await consumer.start()
    try:
        end = await _start(consumer, settings.topics.results, start)
        rows = await _until_end(consumer, end)
        _say(HEADER)
        for row in rows:
            _say(row.line())
        if follow and end:
            await _follow(consumer, rows, stop)
    finally:
        await consumer.stop()
    _say("")
    _say(f"since {start.strftime('%Y-%m-%d %H:%M:%SZ')}")
    for line in counts(rows):
        _say(line)


async def run_results(settings: Settings, *, since: str, follow: bool) -> int:
    try:
        period = parse_duration(since)
    except ValueError as error:
        print(str(error), file=sys.stderr)
        return 2
    await show_results(settings, since=period, follow=follow)
    return 0
