"""What `/readyz` answers: ready, or why not, in the order a starting worker meets them.

A worker starts by reaching Kafka (its topics must exist), then reads the state topic to its
end, then joins the consumer group and waits for its partitions (which waits for every other
member to hand its events over), then reads what the partitions' previous owner wrote to
the state topic. Each step that has not happened yet is a reason, with a detail that names
what it waits for or the last error that held it back (never a secret: the errors are
Kafka's and the settings' own). Once the group has given the worker its partitions it stays
ready through later rebalances, as long as the broker answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NotReadyReason = Literal[
    "kafka_not_connected", "state_topic_loading", "no_partitions_assigned", "stopping"
]
StartPhase = Literal["connecting", "loading", "joining", "started"]
"""Where `Runtime.start()` is: reaching Kafka and its topics, reading the state topic,
joining the consumer group, or done."""


@dataclass(frozen=True)
class Readiness:
    reason: NotReadyReason | None = None
    detail: str = ""
    assigned_partitions: int = 0

    @property
    def ready(self) -> bool:
        return self.reason is None

    @property
    def status_code(self) -> int:
        return 200 if self.ready else 503

    def body(self) -> dict[str, object]:
        """`{"ready": true, "assignedPartitions": n}`, or `{"ready": false, "reason": …,
        "detail": …}`."""
        if self.reason is None:
            return {"ready": True, "assignedPartitions": self.assigned_partitions}
        return {"ready": False, "reason": self.reason, "detail": self.detail}
