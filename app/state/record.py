"""One dossier's record: the Elements ids the worker knows and the values it last synced (pure).

A record is written only after Elements acknowledged the writes it describes, and is
marked unread (`read_at` = 0) before a plan's first write, so a worker that dies
between the two finds a record it does not trust and reads Elements again. The
record's view of the klant's addresses, e-mail addresses and phone numbers is what
Elements held when last read, plus what the worker added since; `None` means that
list was never read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.domain.model import DesiredCustomer, DossierState, KnownContract

RECORD_VERSION = 2
"""The record format this worker writes. Bump it only for a change the previous release would
misread (a field it ignores is no such change: unknown fields are ignored), and add the
upgrade from the previous version to `UPGRADES`: a new release then keeps every record, and
the previous release, after a rollback, counts the new ones as none (it reads Elements again,
writing nothing twice)."""

UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: lambda document: {**document, "version": 2, "contracts_complete": False},
}
"""Per older version, what makes its record one of the next version. 1 → 2: a version 1
record's contracts were taken as every contract of the dossier, which only holds for a
dossier this worker created, and the record does not say whether it did."""


def upgraded(document: Any) -> dict[str, Any] | None:
    """The record document in `RECORD_VERSION`'s format, upgraded step by step from an older
    version; None for a version this release cannot read (a newer one, after a rollback) or
    for what is no JSON object."""
    if not isinstance(document, dict):
        return None
    version = document.get("version", RECORD_VERSION)
    while isinstance(version, int) and version in UPGRADES:
        document = UPGRADES[version](document)
        version = document["version"]
    return document if version == RECORD_VERSION else None


class MedewerkerFact(BaseModel):
    """A medewerker this worker created in a dossier to apply for its zakelijk klant's
    contracts. The API lists no medewerkers, so only this fact knows it exists."""

    model_config = ConfigDict(frozen=True)

    klant_id: int
    medewerker_id: int


class PortalLocator(BaseModel):
    """Where the portal lists the dossier's customer: spares a search after a restart."""

    model_config = ConfigDict(frozen=True)

    customer_id: str
    page: int


def portal_locator(value: bytes) -> PortalLocator | None:
    """Where a dossier record last found its portal customer, read without validating the
    rest of the record: at start-up every record is read for it, and orjson with the locator
    alone costs a third of a full parse (`python -m app bench-state`). A value that is no
    JSON object, of a record version this release cannot read, or without a locator gives
    none (the locator is the same in every version so far). A record
    unreadable elsewhere may still give its locator: it is only where to look first in the
    portal, which the directory checks on every lookup."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if upgraded(document) is None:
        return None
    located = document.get("portal")
    if located is None:
        return None
    try:
        return PortalLocator.model_validate(located)
    except ValidationError:
        return None


class DossierRecord(DossierState):
    """The dossier as Elements held it when last read (and written since), with what the
    worker keeps beside it."""

    version: int = RECORD_VERSION
    revision: int = 0
    """Grows with every write of the dossier's record, whichever replica writes it: a replica
    replaces the record it holds only by a newer one (`app.state.memory`)."""
    medewerker_id: int | None = None
    contracts: dict[str, KnownContract] = Field(default_factory=dict)
    contracts_complete: bool = False
    """`contracts` holds every contract this worker put in the dossier: true only when this
    worker created the dossier, and kept while the record describes it. A dossier found in
    Elements may hold contracts no record names (written before go-live, before a tombstone,
    or by a write whose answer was lost), so a contract it lacks is searched for, not created."""
    upstream: DesiredCustomer | None = None
    """The customer as ANVA and the portal gave it at the last sync: what "changed
    upstream since the last sync" is measured against."""
    portal: PortalLocator | None = None
    read_at: float = 0.0
    """When Elements was last read for this dossier (epoch seconds); 0: not to be trusted."""
    writer: str | None = None
    """The worker process that wrote it: a replica follows the records of the others."""

    def unread(self) -> DossierRecord:
        return self.model_copy(update={"read_at": 0.0})

    def with_contract(self, contract_id: str, known: KnownContract | None) -> DossierRecord:
        contracts = {k: v for k, v in self.contracts.items() if k != contract_id}
        if known is not None:
            contracts[contract_id] = known
        return self.model_copy(update={"contracts": contracts})
