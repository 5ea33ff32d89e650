"""The records of every dossier, in process, and written through to the state topic.

`trusted` answers whether a record may stand in for a read of what Elements holds: only
while it is younger than `STATE_MAX_AGE_S` (a hand edit in Elements is healed within that
time) and was not marked unread. Writing follows the order that keeps the durable copy
safe: before a plan's first write the record is durably marked unread (`before_writes`;
it fails the attempt, retryably, when Kafka cannot take that), after the writes the new
record is kept (`remember`). A crash in between leaves a record the next worker does
not trust, so it reads Elements instead of adding what is already there.

Records are ordered by their `revision`, which grows with every write of the dossier's
record: a record read from the topic replaces the one held only when it is newer, so a
late write of a replica that lost the dossier never outranks its new owner's. With
several replicas the revision is confirmed by the dossier's owner lease (`fence`),
which refuses a replica that no longer owns the dossier.

Each record is held as the bytes the topic holds and parsed when a sync asks for it: a
parsed record costs about ten times its JSON in memory, and loading must not parse a
hundred thousand records on the event loop before `/healthz` can answer.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator

import structlog
from pydantic import ValidationError

from app.errors import StateUnavailable
from app.state.record import RECORD_VERSION, DossierRecord, MedewerkerFact, upgraded
from app.ticket import Ticket

log = structlog.get_logger(__name__)

Save = Callable[[str, bytes], Awaitable[None]]
"""Writes a dossier's record (by dossier number) to the state topic."""
Fence = Callable[[str, int], Awaitable[int]]
"""Given the dossier number and the revision this process would write, the revision to
write; raises `OwnershipLost` when this process no longer owns the dossier."""

CLOCK_SKEW_S = 5.0
"""A record read this much later than now was written by a clock that is wrong: not trusted."""
CATCH_UP_POLL_S = 0.02


async def kept_in_process(dossier_number: str, value: bytes) -> None:
    """No durable copy: the dry run and unit tests keep records for this process only."""


async def _unfenced(dossier_number: str, revision: int) -> int:
    """One replica: the in-process lock is the only owner there is."""
    return revision


def parse_record(value: bytes) -> DossierRecord | None:
    """The record these bytes hold, upgraded from an older format version; None when
    unreadable or of a version this release does not know. A record of the running version
    is parsed in one pass (a sync parses its record on every read)."""
    try:
        record = DossierRecord.model_validate_json(value)
        if record.version == RECORD_VERSION:
            return record
    except ValidationError:
        pass
    try:
        document = upgraded(json.loads(value))
        if document is None:
            log.warning("state record of an unknown version; counts as none")
            return None
        return DossierRecord.model_validate(document)
    except (ValueError, AttributeError) as error:  # ValidationError is a ValueError
        log.warning("state record unreadable; counts as none", error=type(error).__name__)
        return None


class DossierMemory:
    def __init__(
        self,
        *,
        max_age_s: float,
        save: Save = kept_in_process,
        save_medewerker: Save = kept_in_process,
        fence: Fence = _unfenced,
        clock: Callable[[], float] = time.time,
        on_save_failed: Callable[[], None] = lambda: None,
    ) -> None:
        self.writer = uuid.uuid4().hex
        self._raw: dict[str, bytes] = {}
        self._max_age_s = max_age_s
        self._save = save
        self._save_medewerker = save_medewerker
        self._medewerkers: dict[str, MedewerkerFact] = {}
        self._fence = fence
        self._clock = clock
        self._on_save_failed = on_save_failed
        self._background: set[asyncio.Task[None]] = set()
        self._reread_from: dict[str, float] = {}
        """When a tombstone made this process forget a dossier's record (`followed`)."""

    def __len__(self) -> int:
        return len(self._raw)

    def load(self, values: Iterable[tuple[str, bytes]]) -> None:
        """The topic's latest value per dossier, kept unparsed (see the module's docstring)."""
        self._raw.update(values)

    def followed_medewerker(self, dossier_number: str, value: bytes | None) -> None:
        """A medewerker fact read from the state topic (at start-up or while running)."""
        try:
            fact = None if value is None else MedewerkerFact.model_validate_json(value)
        except ValidationError:
            log.warning("medewerker fact unreadable; counts as none", dossier=dossier_number)
            fact = None
        if fact is None:
            self._medewerkers.pop(dossier_number, None)
        else:
            self._medewerkers[dossier_number] = fact

    def medewerker(self, dossier_number: str, klant_id: int) -> int | None:
        """The medewerker this worker created to apply for the klant's contracts, if any."""
        fact = self._medewerkers.get(dossier_number)
        if fact is not None and fact.klant_id == klant_id:
            return fact.medewerker_id
        record = self.get(dossier_number)
        if record is None or record.klant is None or record.klant.id != klant_id:
            return None
        return record.medewerker_id

    async def keep_medewerker(self, dossier_number: str, fact: MedewerkerFact) -> None:
        """Keep a medewerker Elements acknowledged, outside the dossier's record and without
        its fence: it exists whoever owns the dossier now, and a second one could never be
        removed, so a lease lost at this moment must not lose it. A durable copy Kafka does
        not take is logged, not raised (this process still knows it)."""
        self._medewerkers[dossier_number] = fact
        try:
            await self._save_medewerker(dossier_number, fact.model_dump_json().encode())
        except Exception as error:
            self._on_save_failed()
            log.warning(
                "medewerker fact not saved; a restarted worker may create another",
                dossier_number=dossier_number,
                error=type(error).__name__,
            )

    def followed(self, dossier_number: str, value: bytes | None) -> None:
        """A value read from the state topic while running.

        A tombstone or a value that cannot be read drops the record (docs/reference/events.md,
        "A tombstone forces a re-read": the operator's way to force a read of Elements). A
        record replaces the one held only when its revision is higher; this process's own come
        back with the revision it holds and change nothing. An older one written after the one
        this process holds (a replica that lost the dossier, late) is answered by writing the
        newer again, so that compaction, which keeps the latest write, keeps the newer record.
        """
        if value is None:
            self._reread_from[dossier_number] = self._clock()
            if self._raw.pop(dossier_number, None) is not None:
                log.info("state record forgotten by a tombstone", dossier_number=dossier_number)
            return
        record = parse_record(value)
        if record is None:
            self._raw.pop(dossier_number, None)
            return
        held = self.get(dossier_number)
        if held is None or record.revision > held.revision:
            self._raw[dossier_number] = value
        elif record.revision < held.revision and held.writer == self.writer:
            self._in_background(self._save(dossier_number, self._raw[dossier_number]))

    def _in_background(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception as error:
                self._on_save_failed()
                log.warning("state record not written again", error=type(error).__name__)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def records(self) -> Iterator[DossierRecord]:
        """Every usable record, parsed one at a time."""
        for number in list(self._raw):
            if (record := self.get(number)) is not None:
                yield record

    def now(self) -> float:
        return self._clock()

    def get(self, dossier_number: str) -> DossierRecord | None:
        """The dossier's record; one that cannot be read, of another version, or read "in
        the future" (a clock that is wrong) counts as none, and is dropped."""
        value = self._raw.get(dossier_number)
        if value is None:
            return None
        record = parse_record(value)
        if record is not None and record.read_at > self._clock() + CLOCK_SKEW_S:
            log.warning("state record read in the future; counts as none", read_at=record.read_at)
            record = None
        if record is None:
            del self._raw[dossier_number]
        return record

    def trusted(self, dossier_number: str) -> DossierRecord | None:
        """The record, when it may stand in for a read of what Elements holds."""
        record = self.get(dossier_number)
        if record is None or record.read_at <= 0:
            return None
        return record if self._clock() - record.read_at <= self._max_age_s else None

    async def caught_up(self, dossier_number: str, revision: int, *, timeout_s: float) -> None:
        """Wait until the record held is at least `revision` (the newest its owner lease has
        seen written); past `timeout_s` the record held is dropped, so the sync reads
        Elements instead of planning from an older record."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (held := self.get(dossier_number)) is None or held.revision < revision:
            if loop.time() >= deadline:
                if held is not None:
                    log.warning(
                        "state record older than its owner's; reading Elements instead",
                        dossier_number=dossier_number,
                        held=held.revision,
                        newest=revision,
                    )
                    self._raw.pop(dossier_number, None)
                return
            await asyncio.sleep(CATCH_UP_POLL_S)

    async def forget(self, dossier_number: str, ticket: Ticket) -> None:
        """An id the record holds is gone from Elements, or names another dossier now:
        durably mark the record unread and drop the klant and contracts it locates, so the
        next sync, here or on another replica, searches Elements again."""
        record = self.get(dossier_number)
        if record is not None and (record.read_at > 0 or record.contracts or record.klant):
            forgotten: dict[str, object] = {"contracts": {}, "klant": None, "standaard_adres": None}
            await self.keep_before_writes(record.unread().model_copy(update=forgotten), ticket)

    async def before_writes(self, dossier_number: str, ticket: Ticket) -> None:
        """Durably mark the record unread before Elements is written to under it."""
        record = self.get(dossier_number)
        if record is not None and record.read_at > 0:
            await self.keep_before_writes(record.unread(), ticket)

    async def keep_before_writes(self, record: DossierRecord, ticket: Ticket) -> None:
        """Keep `record` once Kafka took it: a write to Elements waits for this. A step
        boundary of the ticket's event (`app.event_stop`): an event whose partition was taken
        away stops here; a record of what Elements acknowledged (`remember`) is never
        stopped."""
        ticket.checkpoint()
        number = record.dossier_number
        value = await self._owned(record)
        try:
            await self._save(number, value)
        except Exception as error:
            raise StateUnavailable(
                f"the state topic did not take dossier {number}'s record"
            ) from error
        self._raw[number] = value

    async def _owned(self, record: DossierRecord) -> bytes:
        """The record as this process writes it: its writer, the next revision (confirmed by
        the owner lease), serialised."""
        held = self.get(record.dossier_number)
        proposed = (held.revision if held is not None else 0) + 1
        revision = await self._fence(record.dossier_number, proposed)
        return (
            record.model_copy(update={"writer": self.writer, "revision": revision})
            .model_dump_json()
            .encode()
        )

    def _same(self, record: DossierRecord) -> bool:
        held = self.get(record.dossier_number)
        if held is None:
            return False
        unversioned = {"writer", "revision"}
        return held.model_dump(exclude=unversioned) == record.model_dump(exclude=unversioned)

    def _after_tombstone(self, record: DossierRecord) -> DossierRecord:
        """`record` unread when it starts from a view of Elements older than a tombstone for
        its dossier: a sync already in flight when an operator forced a re-read must not
        save its record as trusted again, or the re-read would never happen."""
        number = record.dossier_number
        forced_at = self._reread_from.get(number)
        if forced_at is None:
            return record
        if record.read_at > forced_at:
            del self._reread_from[number]
            return record
        return record.unread()

    async def remember(self, record: DossierRecord) -> None:
        """Keep `record` (Elements has acknowledged what it describes).

        A durable copy Kafka does not take is logged, not raised: the writes it
        describes are done, and the copy on the topic is the unread one, which a
        restarted worker does not trust. A record equal to the one kept is not written.
        """
        record = self._after_tombstone(record)
        if self._same(record):
            return
        number = record.dossier_number
        value = await self._owned(record)
        self._raw[number] = value
        try:
            await self._save(number, value)
        except Exception as error:
            self._on_save_failed()
            log.warning(
                "state record not saved; a restarted worker reads Elements for this dossier",
                dossier_number=number,
                error=type(error).__name__,
            )
