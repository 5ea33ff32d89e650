"""Events of one dossier waiting behind each other are served by one sync.

A `customer.changed` asks that the dossier hold the customer as ANVA and the portal
know it after the event arrived. A sync whose upstream reads all started after an
event arrived, and which read exactly what that event asks for, is as true an answer
to that event as a sync of its own would be. The consumer starts each event's
processing on a ticket whose freshness bound is the arrival of the newest event of its key
(`app.ticket`), so one sync covers every event queued behind it at that
moment; each of those, when its turn comes, finds that sync here and is answered by
it — its own result, without a second read or write.

"Exactly what it asks for" includes the `portalCustomerId` hint: the hint decides
which portal customer is read (`app.pipeline.upstream.find_portal_customer`), so a sync
that followed another hint, or none, read another question's answer. Such an event
syncs itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import LRUCache


@dataclass(frozen=True)
class ServedBy:
    """A successful sync: the event it ran for, the dossier it synced, the bound its
    upstream reads started after, and the `portalCustomerId` hint it followed."""

    event_id: str
    dossier_id: int
    fresh_after: float
    hint: str | None = None


class RecentSyncs:
    """The latest successful sync per dossier number, for the most recent `keep` dossiers."""

    def __init__(self, keep: int = 10_000) -> None:
        self._latest: LRUCache[str, ServedBy] = LRUCache(maxsize=keep)

    def serving(self, dossier_number: str, arrived: float, hint: str | None) -> ServedBy | None:
        """The sync that answers an event of this dossier which arrived at `arrived` with
        this hint, if any: one that started reading after it arrived and followed the same
        hint (None for both counts as the same)."""
        served = self._latest.get(dossier_number)
        if served is None or served.fresh_after < arrived or served.hint != hint:
            return None
        return served

    def note(self, dossier_number: str, served: ServedBy) -> None:
        self._latest[dossier_number] = served
