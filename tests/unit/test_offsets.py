"""The commit point is the lowest offset still unfinished, per partition."""

from __future__ import annotations

from app.kafka.offsets import OffsetTracker

P = ("customer-events", 0)
Q = ("customer-events", 1)


def tracker(*offsets: int, partition: object = P) -> OffsetTracker:
    tracked = OffsetTracker()
    for offset in offsets:
        tracked.start(partition, offset)
    return tracked


def finish_all(tracked: OffsetTracker, *offsets: int, partition: object = P) -> list[int | None]:
    return [tracked.finish(partition, offset) for offset in offsets]


def test_in_order_finishes_advance_commit_by_one() -> None:
    assert finish_all(tracker(5, 6, 7), 5, 6, 7) == [6, 7, 8]


def test_out_of_order_finishes_commit_only_up_to_lowest_unfinished() -> None:
    tracked = tracker(5, 6, 7)
    assert finish_all(tracked, 7, 6) == [5, None]
    assert tracked.pending(P) == 1
    assert tracked.finish(P, 5) == 8


def test_commit_stops_at_a_gap_and_jumps_when_it_closes() -> None:
    tracked = tracker(1, 2, 3, 4)
    assert finish_all(tracked, 1, 3, 4) == [2, None, None]
    assert tracked.finish(P, 2) == 5


def test_commit_never_passes_an_offset_started_later_and_still_running() -> None:
    tracked = tracker(1)
    assert tracked.finish(P, 1) == 2
    tracked.start(P, 2)
    tracked.start(P, 3)
    assert tracked.finish(P, 3) is None
    assert tracked.finish(P, 2) == 4


def test_finishing_an_unknown_offset_returns_none() -> None:
    tracked = tracker(5)
    assert tracked.finish(P, 6) is None
    assert tracked.finish(Q, 5) is None
    assert tracked.pending(P) == 1


def test_finishing_an_offset_twice_returns_none_the_second_time() -> None:
    tracked = tracker(5, 6)
    assert finish_all(tracked, 5, 5) == [6, None]


def test_partitions_are_tracked_independently() -> None:
    tracked = tracker(5, 6)
    tracked.start(Q, 100)
    assert tracked.finish(Q, 100) == 101
    assert tracked.finish(P, 6) == 5
    assert tracked.pending(P) == 1


def test_forget_drops_a_partition() -> None:
    tracked = tracker(5, 6)
    tracked.start(Q, 1)
    tracked.forget(P)
    assert tracked.pending(P) == 0
    assert tracked.finish(P, 5) is None
    assert tracked.pending(Q) == 1


def test_forgotten_partition_starts_afresh_when_assigned_again() -> None:
    tracked = tracker(5, 6)
    assert tracked.finish(P, 5) == 6
    tracked.forget(P)
    tracked.start(P, 3)
    assert tracked.finish(P, 3) == 4


def test_forget_of_unknown_partition_is_harmless() -> None:
    tracked = OffsetTracker()
    tracked.forget(P)
    assert tracked.pending(P) == 0


def test_a_handover_names_the_commit_point_and_what_finished_above_it_with_timestamps() -> None:
    tracked = OffsetTracker()
    for offset in (5, 6, 7, 8):
        tracked.start(P, offset, 1000 + offset)
    assert finish_all(tracked, 6, 8) == [5, None]

    let_go = tracked.handover(P)

    assert let_go is not None
    assert (let_go.commit_at, let_go.done_above) == (5, {6: 1006, 8: 1008})


def test_what_finished_below_a_commit_point_kafka_took_is_not_handed_over() -> None:
    tracked = OffsetTracker()
    for offset in (5, 6, 7):
        tracked.start(P, offset, offset)
    finish_all(tracked, 5, 7)
    tracked.committed(P, 6)

    let_go = tracked.handover(P)

    assert let_go is not None
    assert (let_go.commit_at, let_go.done_above) == (6, {7: 7})


def test_nothing_is_handed_over_from_a_partition_where_nothing_finished() -> None:
    tracked = tracker(5, 6)
    assert tracked.handover(P) is None
    assert OffsetTracker().handover(Q) is None


def test_the_next_owner_skips_only_the_very_messages_the_previous_owner_finished() -> None:
    tracked = OffsetTracker()
    tracked.expect(P, resumes_at=5, done={6: 1006, 7: 1007})

    assert not tracked.finished_elsewhere(P, 5, 1005)
    assert tracked.finished_elsewhere(P, 6, 1006)
    assert not tracked.finished_elsewhere(P, 7, 9999), "another message at that offset"
    assert not tracked.finished_elsewhere(P, 6, 1006), "skipped once"


def test_a_group_rewound_before_the_previous_owner_let_go_processes_everything_again() -> None:
    tracked = OffsetTracker()
    tracked.expect(P, resumes_at=5, done={6: 1006})

    assert not tracked.finished_elsewhere(P, 2, 1002)
    assert not tracked.finished_elsewhere(P, 6, 1006)


def test_what_the_previous_owner_finished_and_was_not_fetched_yet_is_handed_on() -> None:
    tracked = OffsetTracker()
    tracked.expect(P, resumes_at=5, done={6: 1006, 9: 1009})
    assert not tracked.finished_elsewhere(P, 5, 1005)
    tracked.start(P, 5, 1005)
    assert tracked.finished_elsewhere(P, 6, 1006)
    tracked.start(P, 6, 1006)
    assert tracked.finish(P, 6) == 5, "5 still runs"
    tracked.start(P, 7, 1007)
    assert tracked.finish(P, 7) is None

    let_go = tracked.handover(P)

    assert let_go is not None
    assert (let_go.commit_at, let_go.done_above) == (5, {6: 1006, 7: 1007, 9: 1009})


def test_a_handover_whose_commit_fails_is_no_rewind_to_the_next_owner() -> None:
    """The record is written before the commit. When that commit fails, the next owner
    resumes at the last commit Kafka took (3), below the new point (5): that looked like an
    operator's rewind, so it processed 6 and 7 again, and 3 and 4 too."""
    first = OffsetTracker()
    for offset in range(3, 8):
        first.start(P, offset, 1000 + offset)
    assert finish_all(first, 3, 4, 6, 7) == [4, 5, None, None]  # neither commit was taken
    let_go = first.handover(P)
    assert let_go is not None
    assert (let_go.commit_at, let_go.resumes_at) == (5, 3)

    nxt = OffsetTracker()
    nxt.expect(P, resumes_at=let_go.resumes_at, done=let_go.done_above)
    skipped = [nxt.finished_elsewhere(P, offset, 1000 + offset) for offset in range(3, 8)]

    assert skipped == [True, True, False, True, True]


def test_after_a_commit_kafka_took_the_next_owner_skips_what_finished_above_it() -> None:
    first = OffsetTracker()
    for offset in range(3, 8):
        first.start(P, offset, 1000 + offset)
    finish_all(first, 3, 4, 6, 7)
    first.committed(P, 5)
    let_go = first.handover(P)
    assert let_go is not None

    nxt = OffsetTracker()
    nxt.expect(P, resumes_at=let_go.resumes_at, done=let_go.done_above)

    assert let_go.done_above == {6: 1006, 7: 1007}
    assert [nxt.finished_elsewhere(P, o, 1000 + o) for o in range(5, 8)] == [False, True, True]
