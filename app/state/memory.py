"""The records of every dossier, in process, and written through to the state topic.

`trusted` answers whether a record may stand in for a read of Elements: only while it
is younger than `STATE_MAX_AGE_S` (a hand edit in Elements is healed within that
time) and was not marked unread. Writing follows the order that keeps the durable copy
safe: before a plan's first write the record is durably marked unread (`before_writes`;
it fails the attempt, retryably, when Kafka cannot take that), after the writes the new
record is kept (`remember`). A crash in between leaves a record the next worker does
not trust, so it reads Elements instead of adding what is already there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterable

import structlog

from app.errors import StateUnavailable
from app.state.record import DossierRecord

log = structlog.get_logger(__name__)

Save = Callable[[DossierRecord], Awaitable[None]]


async def _kept_in_process(record: DossierRecord) -> None:
    """No durable copy: the dry run and unit tests keep records for this process only."""


class DossierMemory:
    def __init__(
        self,
        *,
        max_age_s: float,
        save: Save = _kept_in_process,
        clock: Callable[[], float] = time.time,
        on_save_failed: Callable[[], None] = lambda: None,
    ) -> None:
        self.writer = uuid.uuid4().hex
        self._records: dict[str, DossierRecord] = {}
        self._max_age_s = max_age_s
        self._save = save
        self._clock = clock
        self._on_save_failed = on_save_failed

    def __len__(self) -> int:
        return len(self._records)

    def load(self, records: Iterable[DossierRecord]) -> None:
        for record in records:
            self._records[record.dossier_number] = record

    def written_elsewhere(self, record: DossierRecord) -> None:
        """A record read from the state topic: another replica's (or an earlier process's)
        is kept, this process's own arrive after it kept them and are passed over."""
        if record.writer != self.writer:
            self._records[record.dossier_number] = record

    def records(self) -> Iterable[DossierRecord]:
        return self._records.values()

    def now(self) -> float:
        return self._clock()

    def get(self, dossier_number: str) -> DossierRecord | None:
        return self._records.get(dossier_number)

    def trusted(self, dossier_number: str) -> DossierRecord | None:
        """The record, when it may stand in for a read of Elements."""
        record = self._records.get(dossier_number)
        if record is None or record.read_at <= 0:
            return None
        return record if self._clock() - record.read_at <= self._max_age_s else None

    def forget(self, dossier_number: str) -> None:
        """An id it holds is gone from Elements: the next sync reads Elements again."""
        if (record := self._records.get(dossier_number)) is not None:
            self._records[dossier_number] = record.unread()

    async def before_writes(self, dossier_number: str) -> None:
        """Durably mark the record unread before Elements is written to under it."""
        record = self._records.get(dossier_number)
        if record is not None and record.read_at > 0:
            await self.keep_before_writes(record.unread())

    async def keep_before_writes(self, record: DossierRecord) -> None:
        """Keep `record` once Kafka took it: a write to Elements waits for this."""
        record = self._own(record)
        try:
            await self._save(record)
        except Exception as error:
            raise StateUnavailable(
                f"the state topic did not take dossier {record.dossier_number}'s record"
            ) from error
        self._records[record.dossier_number] = record

    def _own(self, record: DossierRecord) -> DossierRecord:
        return record.model_copy(update={"writer": self.writer})

    async def remember(self, record: DossierRecord) -> None:
        """Keep `record` (Elements has acknowledged what it describes).

        A durable copy Kafka does not take is logged, not raised: the writes it
        describes are done, and the copy on the topic is the unread one, which a
        restarted worker does not trust. A record equal to the one kept is not written.
        """
        record = self._own(record)
        if self._records.get(record.dossier_number) == record:
            return
        self._records[record.dossier_number] = record
        try:
            await self._save(record)
        except Exception as error:
            self._on_save_failed()
            log.warning(
                "state record not saved; a restarted worker reads Elements for this dossier",
                dossier_number=record.dossier_number,
                error=type(error).__name__,
            )
