"""Which offset may be committed, when messages of one partition finish out of order.

A Kafka commit is cumulative: committing n says everything below n is done. With
several keys of one partition in flight, offset 7 may finish before offset 5; the
commit point is the lowest offset still unfinished, so nothing is skipped if the
worker dies.

A handover needs more than the commit point. When the partition goes while 5 is still
running, 5 stops and is committed as the point, yet 6 and 7 are done: their results are
out. The next owner fetches from 5 on and would give 6 and 7 a second result. So the
tracker also knows what finished above the commit point (`handover`), with each message's
timestamp; the outgoing owner writes that down, and the next owner is told (`expect`) and
skips those messages (`finished_elsewhere`) — only the very same message: the offset and
its timestamp must match, and only when it resumes at or after the last commit point Kafka
took (an operator who rewinds the group's offsets to process messages again gets them
processed).

The record is written before the commit, which may then fail: the next owner resumes at
the last commit Kafka took, below the new point. So the tracker keeps what finished since
the last commit Kafka took (`committed`), and the record names that point and all of it:
a failed commit is not mistaken for a rewind, and 3 and 4, finished here but not
committed, are skipped too.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field


@dataclass
class _Partition:
    pending: dict[int, int] = field(default_factory=dict)
    """Offsets taken and not finished → their messages' timestamps."""
    done: dict[int, int] = field(default_factory=dict)
    """Offsets finished at or above the last commit Kafka took → their timestamps."""
    highest_done: int = -1
    committable: int | None = None
    taken: int | None = None
    """The last commit point Kafka took, or, before any, the first offset fetched here."""
    expected: dict[int, int] = field(default_factory=dict)
    """Offsets the previous owner finished, not fetched here yet → their timestamps."""
    resumes_at: int | None = None
    """The previous owner's commit point when it let go: where fetching should resume."""
    fetched: bool = False


@dataclass(frozen=True)
class LetGo:
    """What a partition's owner leaves behind: the commit point, and the offsets finished at
    or above `resumes_at` (offset → the message's timestamp)."""

    commit_at: int
    done_above: dict[int, int]
    resumes_at: int
    """Where the next owner resumes at the earliest: the last commit Kafka took, in case
    `commit_at` is not taken."""


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[Hashable, _Partition] = {}

    def _state(self, partition: Hashable) -> _Partition:
        return self._partitions.setdefault(partition, _Partition())

    def expect(self, partition: Hashable, *, resumes_at: int, done: Mapping[int, int]) -> None:
        """The partition's previous owner let go at `resumes_at` with `done` finished above it."""
        state = self._state(partition)
        state.resumes_at = resumes_at
        state.expected = {offset: ts for offset, ts in done.items() if offset >= resumes_at}

    def finished_elsewhere(self, partition: Hashable, offset: int, timestamp: int) -> bool:
        """True when the previous owner finished this very message: it counts as finished
        here without being processed (`start` then `finish` it)."""
        state = self._state(partition)
        if not state.fetched:
            self._first_fetch(state, offset)
            if state.resumes_at is not None and offset < state.resumes_at:
                state.expected.clear()  # rewound: process everything again
        return state.expected.pop(offset, None) == timestamp

    def start(self, partition: Hashable, offset: int, timestamp: int = 0) -> None:
        state = self._state(partition)
        if not state.fetched:
            self._first_fetch(state, offset)
        state.pending[offset] = timestamp

    @staticmethod
    def _first_fetch(state: _Partition, offset: int) -> None:
        state.fetched = True
        state.taken = offset

    def committed(self, partition: Hashable, point: int) -> None:
        """Kafka took the commit of `point`: what finished below it is nobody's concern."""
        state = self._partitions.get(partition)
        if state is None or (state.taken is not None and point <= state.taken):
            return
        state.taken = point
        state.done = {o: ts for o, ts in state.done.items() if o >= point}

    def finish(self, partition: Hashable, offset: int) -> int | None:
        """Mark `offset` done; returns the new offset to commit when the commit point moved."""
        state = self._partitions.get(partition)
        if state is None or offset not in state.pending:
            return None
        state.done[offset] = state.pending.pop(offset)
        state.highest_done = max(state.highest_done, offset)
        point = self._point(state)
        if state.committable is not None and point <= state.committable:
            return None
        state.committable = point
        return point

    @staticmethod
    def _point(state: _Partition) -> int:
        return min(state.pending) if state.pending else state.highest_done + 1

    def pending(self, partition: Hashable) -> int:
        state = self._partitions.get(partition)
        return len(state.pending) if state else 0

    def handover(self, partition: Hashable) -> LetGo | None:
        """The commit point and what finished since the last commit Kafka took — this
        owner's finished messages and the previous owner's not fetched yet; None when
        nothing was taken from the partition."""
        state = self._partitions.get(partition)
        if state is None or state.highest_done < 0:
            return None
        point = self._point(state)
        resumes_at = point if state.taken is None else min(state.taken, point)
        above = {**state.expected, **state.done}
        done = {o: ts for o, ts in sorted(above.items()) if o >= resumes_at}
        return LetGo(point, done, resumes_at)

    def forget(self, partition: Hashable) -> None:
        """The partition was revoked: whoever gets it next starts from the committed offset."""
        self._partitions.pop(partition, None)
