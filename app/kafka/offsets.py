"""Which offset may be committed, when messages of one partition finish out of order.

A Kafka commit is cumulative: committing n says everything below n is done. With
several keys of one partition in flight, offset 7 may finish before offset 5; the
commit point is the lowest offset still unfinished, so nothing is skipped if the
worker dies.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class _Partition:
    pending: set[int] = field(default_factory=set)
    highest_done: int = -1
    committable: int | None = None


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[Hashable, _Partition] = {}

    def start(self, partition: Hashable, offset: int) -> None:
        self._partitions.setdefault(partition, _Partition()).pending.add(offset)

    def finish(self, partition: Hashable, offset: int) -> int | None:
        """Mark `offset` done; returns the new offset to commit when the commit point moved."""
        state = self._partitions.get(partition)
        if state is None or offset not in state.pending:
            return None
        state.pending.discard(offset)
        state.highest_done = max(state.highest_done, offset)
        point = min(state.pending) if state.pending else state.highest_done + 1
        if state.committable is not None and point <= state.committable:
            return None
        state.committable = point
        return point

    def pending(self, partition: Hashable) -> int:
        state = self._partitions.get(partition)
        return len(state.pending) if state else 0

    def forget(self, partition: Hashable) -> None:
        """The partition was revoked: whoever gets it next starts from the committed offset."""
        self._partitions.pop(partition, None)
