"""One dossier's record: the Elements ids the worker knows and the values it last synced (pure).

A record is written only after Elements acknowledged the writes it describes, and is
marked unread (`read_at` = 0) before a plan's first write, so a worker that dies
between the two finds a record it does not trust and reads Elements again. The
record's view of the klant's addresses, e-mail addresses and phone numbers is what
Elements held when last read, plus what the worker added since; `None` means that
list was never read.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from app.clients.elements import KlantKind
from app.pipeline.apply import Applied
from app.pipeline.contract_plan import KnownContract
from app.pipeline.model import Adres, DesiredCustomer, DossierState, KlantState, StoredAdres

RECORD_VERSION = 1
"""The record format this worker writes and reads; a record of another version counts as none."""
T = TypeVar("T")


class KlantRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: KlantKind
    id: int
    adressen: tuple[StoredAdres, ...] | None = None
    emails: tuple[str, ...] | None = None
    phones: tuple[str, ...] | None = None


class PortalLocator(BaseModel):
    """Where the portal lists the dossier's customer: spares a search after a restart."""

    model_config = ConfigDict(frozen=True)

    customer_id: str
    page: int


class DossierRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int = RECORD_VERSION
    revision: int = 0
    """Grows with every write of the dossier's record, whichever replica writes it: a replica
    replaces the record it holds only by a newer one (`app.state.memory`)."""
    dossier_number: str
    dossier_id: int
    standaard_adres: StoredAdres | None = None
    klant: KlantRecord | None = None
    medewerker_id: int | None = None
    contracts: dict[str, KnownContract] = {}
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


def _listed(items: tuple[T, ...] | None) -> list[T] | None:
    return None if items is None else list(items)


def _kept(items: list[T] | None) -> tuple[T, ...] | None:
    return None if items is None else tuple(items)


def remembered_state(record: DossierRecord) -> DossierState:
    """The dossier as the record says Elements holds it, to plan against without a read."""
    klant = record.klant
    return DossierState(
        id=record.dossier_id,
        relatienummer=record.dossier_number,
        standaard_adres=record.standaard_adres,
        klant=None
        if klant is None
        else KlantState(
            kind=klant.kind,
            id=klant.id,
            adressen=_listed(klant.adressen),
            emails=_listed(klant.emails),
            phones=_listed(klant.phones),
        ),
    )


def _klant_after(
    before: KlantState | None, wanted: DesiredCustomer, applied: Applied
) -> KlantState | None:
    if applied.klant is None:
        return None
    if before is not None and (before.kind, before.id) == applied.klant:
        klant = replace(
            before,
            adressen=_listed(_kept(before.adressen)),
            emails=_listed(_kept(before.emails)),
            phones=_listed(_kept(before.phones)),
        )
    else:  # created by this plan: it holds only what the plan added
        klant = KlantState(*applied.klant, adressen=[], emails=[], phones=[])
    if applied.new_adres_id is not None and wanted.adres is not None and klant.adressen is not None:
        klant.adressen.append(StoredAdres(applied.new_adres_id, wanted.adres))
    if applied.email_added and wanted.email and klant.emails is not None:
        klant.emails.append(wanted.email)
    if applied.phone_added and wanted.phone and klant.phones is not None:
        klant.phones.append(wanted.phone)
    return klant


def state_after(
    before: DossierState | None, wanted: DesiredCustomer, applied: Applied
) -> DossierState:
    """What Elements holds once a plan for `wanted`, started on `before`, was applied."""
    standaard = before.standaard_adres if before else None
    if applied.standaard_adres_id is not None and (
        standaard is None or standaard.id != applied.standaard_adres_id
    ):
        if wanted.adres is None:
            raise RuntimeError("a plan pointed the dossier at an address it did not want")
        standaard = StoredAdres(applied.standaard_adres_id, wanted.adres)
    return DossierState(
        id=applied.dossier(),
        relatienummer=wanted.dossier_number,
        standaard_adres=standaard,
        klant=_klant_after(before.klant if before else None, wanted, applied),
    )


def record_of(
    state: DossierState,
    *,
    upstream: DesiredCustomer | None,
    read_at: float,
    previous: DossierRecord | None,
    medewerker_id: int | None = None,
    portal: PortalLocator | None = None,
) -> DossierRecord:
    """The record of `state`; contracts and medewerker carry over from `previous` when it
    describes the same dossier, the portal locator when no new one is given."""
    same = previous if previous is not None and previous.dossier_id == state.id else None
    klant = state.klant
    return DossierRecord(
        dossier_number=state.relatienummer,
        dossier_id=state.id,
        standaard_adres=state.standaard_adres,
        klant=None
        if klant is None
        else KlantRecord(
            kind=klant.kind,
            id=klant.id,
            adressen=_kept(klant.adressen),
            emails=_kept(klant.emails),
            phones=_kept(klant.phones),
        ),
        medewerker_id=medewerker_id
        if medewerker_id is not None or same is None
        else same.medewerker_id,
        contracts=dict(same.contracts) if same else {},
        upstream=upstream,
        portal=portal or (previous.portal if previous else None),
        read_at=read_at,
    )


def wanted_customer(
    desired: DesiredCustomer, record: DossierRecord | None, current: DossierState | None
) -> DesiredCustomer:
    """What to make Elements hold: upstream's values, except an address upstream did not
    change since the last sync, which stays the one Elements holds (`current`).

    That is how a customer's own change through a form stands (CONTRACT.md) until the
    portal's address changes; e-mail addresses and phone numbers are only ever added,
    so upstream's are wanted whatever a form added beside them. A record marked unread
    says nothing of the last sync (a crash or a failure may have come between its writes
    and its record), so its upstream values decide nothing.
    """
    last = record.upstream if record is not None and record.read_at > 0 else None
    held = current.standaard_adres if current is not None else None
    if last is None or held is None or _adres_key(desired.adres) != _adres_key(last.adres):
        return desired
    return replace(desired, adres=held.adres)


def _adres_key(adres: Adres | None) -> tuple[str, ...] | None:
    return None if adres is None else adres.key()
