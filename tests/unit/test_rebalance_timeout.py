"""The group waits for a member's handover: the longest one ends well inside the rebalance
timeout, or the member is left out of the new generation while it still holds events."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiokafka.structs import TopicPartition

from app.event_stop import EventStop
from app.kafka.offsets import OffsetTracker
from app.kafka.partition_handover import (
    REBALANCE_MARGIN_S,
    HandoverRecords,
    PartitionHandover,
    rebalance_timeout_ms,
)
from app.metrics import Metrics
from app.settings import KafkaSettings

P = TopicPartition("customer-events", 0)


async def hangs(*_: object) -> None:
    await asyncio.Event().wait()


async def ignores_its_stop_and_its_cancel(handover: EventStop) -> None:
    """An event stuck where nothing ends it: it swallows even its cancellation once, and then
    unwinds for an hour (of looptime's clock, so that the test's loop still closes)."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await asyncio.sleep(3600)
    finally:
        handover.end(stopped=True)


@pytest.mark.looptime
@pytest.mark.parametrize("handover_timeout_s", [5.0, 20.0, 60.0])
async def test_the_longest_handover_ends_a_margin_inside_the_rebalance_timeout(
    handover_timeout_s: float,
) -> None:
    kafka = KafkaSettings(handover_timeout_s=handover_timeout_s)
    offsets = OffsetTracker()
    offsets.start(P, 0)
    offsets.finish(P, 0)
    offsets.start(P, 1)
    offsets.start(P, 2)
    offsets.finish(P, 2)
    records = HandoverRecords("group", write=hangs)
    handovers = PartitionHandover(offsets, records, commit=hangs, metrics=Metrics())
    stuck = handovers.taken(P)
    stuck.task = asyncio.create_task(ignores_its_stop_and_its_cancel(stuck))
    loop = asyncio.get_running_loop()
    started = loop.time()

    drained = await handovers.let_go({P}, timeout_s=kafka.handover_timeout_s, reason="rebalance")

    took_s = loop.time() - started
    stuck.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stuck.task
    assert not drained
    assert took_s > kafka.handover_timeout_s, "the worst case: every wait ran out"
    assert took_s + REBALANCE_MARGIN_S <= rebalance_timeout_ms(kafka) / 1000
