"""The portal directory's index: on which page each customer was seen (pure, no reads).

A locator, never the customer's state: a lookup re-reads the page (`app.clients.portal`).
Sightings are numbered by the read that made them (`PageRead.sequence`, as reads start), so
of two sightings of a customer the newer wins; a rebuilt index is put in place of the old
one keeping what it could not see (`PortalIndex.put_in_place`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from app.clients.portal import PortalPage

PageReadPurpose = Literal["lookup", "refresh"]
"""Whether a page read served an event (or the prefill), a full read it waits on
included, or the index the background task keeps."""


@dataclass(frozen=True)
class PageRead:
    """A page as one read showed it; `sequence` numbers reads as they start, so of two
    sightings of a customer the one with the higher number is the newer."""

    sequence: int
    page: PortalPage


@dataclass(frozen=True)
class Sighting:
    page: int
    dossier_number: str | None
    sequence: int


@dataclass
class Sightings:
    """Where customers were seen: customer id → sighting, dossier number → customer id."""

    by_customer: dict[str, Sighting] = field(default_factory=dict)
    customer_of_dossier: dict[str, str] = field(default_factory=dict)

    def learn(self, customer_id: str, dossier_number: str | None, page: int, sequence: int) -> None:
        """Keep the newer sighting; a customer linked to another dossier leaves the old one."""
        previous = self.by_customer.get(customer_id)
        if previous is not None:
            if previous.sequence > sequence:
                return
            if previous.dossier_number != dossier_number:
                self._unlink(customer_id, previous.dossier_number)
        self.by_customer[customer_id] = Sighting(page, dossier_number, sequence)
        if dossier_number:
            self.customer_of_dossier[dossier_number] = customer_id

    def learn_read(self, read: PageRead) -> None:
        for customer in read.page.customers:
            self.learn(customer.id, customer.dossier_number, read.page.number, read.sequence)

    def forget(self, customer_id: str) -> None:
        if (sighting := self.by_customer.pop(customer_id, None)) is not None:
            self._unlink(customer_id, sighting.dossier_number)

    def page_of(self, customer_id: str | None) -> int | None:
        sighting = None if customer_id is None else self.by_customer.get(customer_id)
        return None if sighting is None else sighting.page

    def _unlink(self, customer_id: str, dossier_number: str | None) -> None:
        if dossier_number and self.customer_of_dossier.get(dossier_number) == customer_id:
            del self.customer_of_dossier[dossier_number]


class PortalIndex:
    """The sightings in place, the reads' numbering, and the highest page seen."""

    def __init__(self) -> None:
        self._sightings = Sightings()
        self._started = 0
        """The read sequence when the index in place began: sightings older than that were
        not confirmed by it."""
        self._sequence = 0
        self.last_page = 0
        """The highest page seen with customers on it: where the append region starts."""
        self.indexed = False
        """True once a complete index was put in place."""
        self.builds = 0

    @property
    def sequence(self) -> int:
        """The number of the latest read started."""
        return self._sequence

    def next_sequence(self) -> int:
        """A read starts: its number."""
        self._sequence += 1
        return self._sequence

    def learn(self, customer_id: str, dossier_number: str | None, page: int) -> None:
        """Seed a locator (sequence 0: below every page read)."""
        self._sightings.learn(customer_id, dossier_number, page, 0)
        self.last_page = max(self.last_page, page)

    def learn_read(self, read: PageRead) -> None:
        self._sightings.learn_read(read)
        if read.page.customers:
            self.last_page = max(self.last_page, read.page.number)

    def forget(self, customer_id: str) -> None:
        self._sightings.forget(customer_id)

    def page_of(self, customer_id: str | None) -> int | None:
        return self._sightings.page_of(customer_id)

    def customer_of_dossier(self, dossier_number: str) -> str | None:
        return self._sightings.customer_of_dossier.get(dossier_number)

    def put_in_place(self, index: Sightings, end_page: int, started: int) -> None:
        """The new index replaces the old, keeping of the old what it could not see: a
        sighting newer than its own (a lookup's read while it ran), and the sighting of a
        customer it did not see that was confirmed since the old index began (kept for
        one build: one the portal deleted costs its page reads only if looked up). A build
        that began before the index in place did is dropped: it knows less."""
        if started < self._started:
            return
        last_page = end_page
        for customer_id, sighting in self._sightings.by_customer.items():
            if customer_id not in index.by_customer and sighting.sequence <= self._started:
                continue
            index.learn(customer_id, sighting.dossier_number, sighting.page, sighting.sequence)
            if sighting.sequence > started:
                last_page = max(last_page, sighting.page)
        self._sightings, self._started, self.last_page = index, started, last_page
        self.indexed = True
        self.builds += 1
