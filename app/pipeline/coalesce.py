"""Events of one dossier waiting behind each other are served by one sync.

A `customer.changed` asks that the dossier hold the customer as ANVA and the portal
know it after the event arrived. A sync whose upstream reads all started after an
event arrived is as true an answer to that event as a sync of its own would be. The
consumer starts each event's processing with the freshness bound set to the arrival
of the newest event of its key (`app.clients.freshness`), so one sync covers every
event queued behind it at that moment; each of those, when its turn comes, finds that
sync here and is answered by it — its own result, without a second read or write.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class ServedBy:
    """A successful sync: the event it ran for, the dossier it synced, and the bound its
    upstream reads started after."""

    event_id: str
    dossier_id: int
    fresh_after: float


class RecentSyncs:
    """The latest successful sync per dossier number, for the most recent `keep` dossiers."""

    def __init__(self, keep: int = 10_000) -> None:
        self._keep = keep
        self._latest: OrderedDict[str, ServedBy] = OrderedDict()

    def serving(self, dossier_number: str, arrived: float) -> ServedBy | None:
        """The sync that answers an event of this dossier which arrived at `arrived`, if any."""
        served = self._latest.get(dossier_number)
        return served if served is not None and served.fresh_after >= arrived else None

    def note(self, dossier_number: str, served: ServedBy) -> None:
        self._latest[dossier_number] = served
        self._latest.move_to_end(dossier_number)
        while len(self._latest) > self._keep:
            self._latest.popitem(last=False)
