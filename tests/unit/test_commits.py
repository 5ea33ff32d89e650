"""Committing without a broker: the commit point moves only when everything below it is done,
a failed commit is retried a few times and then left to the next one, and a partition the
replica no longer holds is never committed. aiokafka's consumer is a fake."""

from __future__ import annotations

from typing import Any

from aiokafka.errors import CommitFailedError, KafkaConnectionError
from aiokafka.structs import TopicPartition

from app.kafka.commits import COMMIT_ATTEMPTS, Commits
from app.kafka.offsets import OffsetTracker
from app.settings import RetrySettings

P = TopicPartition("customer-events", 0)
Q = TopicPartition("customer-events", 1)
INSTANT = RetrySettings(initial_backoff_s=0.001, max_backoff_s=0.001)


class KafkaConsumer:
    """Answers each commit with the next of `failures` (an error to raise), then succeeds."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.commits.append(dict(offsets))


def commits(
    kafka: KafkaConsumer, *, held: set[TopicPartition] | None = None
) -> tuple[Commits, OffsetTracker, list[BaseException]]:
    offsets, failed = OffsetTracker(), list[BaseException]()
    made = Commits(
        offsets,
        consumer=lambda: kafka,  # type: ignore[arg-type, return-value]
        held=lambda: {P, Q} if held is None else held,
        retry=INSTANT,
        failed=failed.append,
    )
    return made, offsets, failed


def started(offsets: OffsetTracker, partition: Any, *taken: int) -> None:
    for offset in taken:
        offsets.start(partition, offset)


async def test_the_commit_point_moves_only_past_offsets_all_done() -> None:
    kafka = KafkaConsumer()
    made, offsets, _ = commits(kafka)
    started(offsets, P, 5, 6, 7)

    await made.release(P, 7)
    await made.release(P, 5)
    await made.release(P, 6)

    assert kafka.commits == [{P: 5}, {P: 6}, {P: 8}], "always the lowest offset still running"


async def test_a_transient_commit_failure_is_retried_and_reported() -> None:
    kafka = KafkaConsumer(KafkaConnectionError("gone"))
    made, offsets, failed = commits(kafka)
    started(offsets, P, 0)

    await made.release(P, 0)

    assert kafka.commits == [{P: 1}]
    assert [type(e) for e in failed] == [KafkaConnectionError]


async def test_a_commit_that_keeps_failing_is_left_to_the_next_one() -> None:
    kafka = KafkaConsumer(*(KafkaConnectionError("gone") for _ in range(COMMIT_ATTEMPTS)))
    made, offsets, failed = commits(kafka)
    started(offsets, P, 0, 1)

    await made.release(P, 0)
    await made.release(P, 1)

    assert kafka.commits == [{P: 2}], "the later commit covers the one that failed"
    assert len(failed) == COMMIT_ATTEMPTS, "each retried attempt and the giving up are reported"


async def test_an_error_that_is_not_kafkas_is_not_retried() -> None:
    kafka = KafkaConsumer(ValueError("a bug"))
    made, offsets, failed = commits(kafka)
    started(offsets, P, 0)

    await made.release(P, 0)

    assert kafka.commits == []
    assert [type(e) for e in failed] == [ValueError]


async def test_a_partition_no_longer_held_is_not_committed() -> None:
    kafka = KafkaConsumer()
    made, offsets, _ = commits(kafka, held={Q})
    started(offsets, P, 0)
    started(offsets, Q, 0)

    await made.release(P, 0)
    await made.commit({P: 1, Q: 1})

    assert kafka.commits == [{Q: 1}]


async def test_a_commit_the_group_refuses_is_tried_at_most_commit_attempts_times() -> None:
    kafka = KafkaConsumer(*(CommitFailedError() for _ in range(COMMIT_ATTEMPTS)))
    made, offsets, failed = commits(kafka)
    started(offsets, P, 0)

    await made.release(P, 0)

    assert kafka.commits == []
    assert len(failed) == COMMIT_ATTEMPTS
