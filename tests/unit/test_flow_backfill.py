"""Flow control holds the backfill topic on its own while the live topics keep flowing."""

from __future__ import annotations

from typing import Any

from aiokafka.structs import TopicPartition

from app.kafka.flow import FlowControl, PauseReason
from app.kafka.offsets import OffsetTracker
from app.metrics import Metrics

LIVE = TopicPartition("customer-events", 0)
BACKFILL = TopicPartition("customer-backfill", 0)
BACKFILL_LATE = TopicPartition("customer-backfill", 1)


class FakeConsumer:
    """The three calls flow control makes, and which partitions are paused."""

    def __init__(self) -> None:
        self.partitions = {LIVE, BACKFILL}
        self.paused: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.partitions)

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused |= set(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused -= set(partitions)


def flow(consumer: FakeConsumer, state: dict[str, Any]) -> FlowControl:
    return FlowControl(
        Metrics(),
        OffsetTracker(),
        consumer=lambda: consumer,  # type: ignore[arg-type,return-value]
        backlog_full=lambda: False,
        external_reason=lambda: state["reason"],
        backfill_topic="customer-backfill",
        backfill_held=lambda: state["held"],
    )


def test_backfill_is_held_alone_and_stays_held_when_a_pause_of_everything_ends() -> None:
    consumer = FakeConsumer()
    reason: PauseReason | None = None
    state: dict[str, Any] = {"reason": reason, "held": True}
    control = flow(consumer, state)

    control.apply()
    assert consumer.paused == {BACKFILL}

    state["reason"] = "daily_budget"
    control.apply()
    assert consumer.paused == {LIVE, BACKFILL}

    state["reason"] = None
    control.apply()
    assert consumer.paused == {BACKFILL}

    control.joined({BACKFILL_LATE})
    assert consumer.paused == {BACKFILL, BACKFILL_LATE}

    consumer.partitions.add(BACKFILL_LATE)
    state["held"] = False
    control.apply()
    assert consumer.paused == set()
