"""The Elements state of a dossier: read it, start a plan from it, remember it.

Only what the plan needs to compare is read. A dossier whose record is trusted
(`DossierMemory.trusted`) is planned against the record, with no read of Elements but for
a list the record does not know and the plan needs (`complete`); any other is found by a
search, and its record then counts from that read.

The record may stand in for what a dossier holds, never for which dossier it is
(docs/reference/events.md, "Identity is checked, never assumed"): a plan that writes, started
from the record, first reads the klantdossier by its id and goes on only while it still carries
the dossier number and is not deleted. Otherwise the record is durably marked unread and the
plan starts again from a search.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import structlog

from app.clients.elements import ContactList, ElementsAdres, ElementsClient, KlantKind
from app.domain.address import Categorie, categorie_of
from app.domain.model import (
    Adres,
    DesiredCustomer,
    DossierState,
    KlantState,
    StoredAdres,
    address_is_current,
)
from app.errors import KlantdossierDeleted, SyncError
from app.pipeline.apply import (
    AddAdres,
    AddEmail,
    AddPhone,
    Applied,
    Origins,
    Step,
    apply_plan,
    check_lengths,
)
from app.pipeline.context import SyncContext
from app.pipeline.customer_plan import CUSTOMER_ORIGINS
from app.state.record import DossierRecord, PortalLocator


def _categorie(rendered: str | None) -> Categorie | None:
    """Elements renders a categorie its own way ("default" for Standaard); None: not told.

    The words are the ones a box address has as straat, so `categorie_of` reads both.
    """
    return None if rendered is None else categorie_of(rendered)


def stored_adres(adres: ElementsAdres) -> StoredAdres:
    return StoredAdres(
        id=adres.id,
        adres=Adres(
            straat=adres.straat,
            nummer=adres.nummer,
            toevoeging=adres.toevoeging,
            postcode=adres.postcode,
            plaatsnaam=adres.plaatsnaam,
            categorie=_categorie(adres.categorie),
        ),
    )


async def find_klant(
    elements: ElementsClient, dossier_id: int, preferred: KlantKind
) -> KlantState | None:
    """The dossier's klant, read with the preferred kind first."""
    other: KlantKind = "zakelijk" if preferred == "particulier" else "particulier"
    for kind in (preferred, other):
        klanten = await elements.klanten(dossier_id, kind)
        if klanten:
            return KlantState(kind=kind, id=min(k.id for k in klanten))
    return None


async def read_dossier_core(
    elements: ElementsClient,
    dossier_number: str,
    preferred: KlantKind,
    remembered: tuple[int, KlantState] | None = None,
) -> DossierState | None:
    """The klantdossier with this relatienummer, its standaard address and its klant
    (`remembered`: the dossier id and klant a record names, which spares listing klanten
    when the search finds that dossier: the API cannot delete a klant, and one removed by
    hand answers 404, which makes the record forgotten).

    The search confirms the dossier's identity (docs/reference/events.md): only a dossier that
    carries the number and is not deleted counts; when only deleted ones carry it, a person
    deleted the customer's dossier and a person decides (`KlantdossierDeleted`).
    """
    found = [
        d
        for d in await elements.find_dossiers(relatienummer=dossier_number)
        if d.relatienummer == dossier_number
    ]
    live = [d for d in found if d.carries(dossier_number)]
    if found and not live:
        raise KlantdossierDeleted(
            f"the only klantdossiers with relatienummer {dossier_number} are deleted "
            f"({', '.join(str(d.id) for d in found)})"
        )
    if not live:
        return None
    dossier = min(live, key=lambda d: d.id)
    standaard = dossier.standaardcorrespondentieadres
    if remembered is not None and remembered[0] == dossier.id:
        klant: KlantState | None = remembered[1]
    else:
        klant = await find_klant(elements, dossier.id, preferred)
    return DossierState(
        dossier_number=dossier_number,
        dossier_id=dossier.id,
        standaard_adres=stored_adres(standaard) if standaard else None,
        klant=klant,
    )


async def read_adressen(elements: ElementsClient, state: DossierState) -> DossierState:
    """`state` with the klant's addresses, to reuse one instead of adding a twin.

    The list also tells the standaard correspondentieadres' categorie, which the
    dossier's embedded copy leaves out.
    """
    klant = state.klant
    if klant is None or klant.adressen is not None:
        return state
    listed = await elements.adressen(state.dossier_id, klant.kind, klant.id)
    adressen = tuple(stored_adres(a) for a in listed)
    standaard = state.standaard_adres
    categorised = next((a for a in adressen if standaard and a.id == standaard.id), standaard)
    return state.model_copy(
        update={
            "klant": klant.model_copy(update={"adressen": adressen}),
            "standaard_adres": categorised,
        }
    )


async def read_contacts(
    elements: ElementsClient, dossier_id: int, klant: KlantState, which: ContactList
) -> tuple[str, ...]:
    """The klant's e-mail addresses or phone numbers, oldest first."""
    found = await elements.contacts(dossier_id, klant.kind, klant.id, which)
    return tuple(contact.naam for contact in sorted(found, key=lambda contact: contact.id))


async def complete(
    elements: ElementsClient, state: DossierState | None, desired: DesiredCustomer
) -> DossierState | None:
    """`state` with what the plan needs to compare `desired` with and it did not know yet.

    The address list only when the dossier's standaard correspondentieadres differs
    from the desired one, the e-mail and phone lists only when there is one to compare.
    """
    if state is None or state.klant is None:
        return state
    if not address_is_current(desired, state):
        state = await read_adressen(elements, state)
    klant = state.klant
    assert klant is not None, "read_adressen keeps the klant"
    lists: dict[str, tuple[str, ...]] = {}
    if desired.email and klant.emails is None:
        lists["emails"] = await read_contacts(elements, state.dossier_id, klant, "emailadressen")
    if desired.phone and klant.phones is None:
        lists["phones"] = await read_contacts(elements, state.dossier_id, klant, "telefoonnummers")
    return state.model_copy(update={"klant": klant.model_copy(update=lists)}) if lists else state


log = structlog.get_logger(__name__)


@dataclass
class Known:
    """The dossier a plan starts on, when it was read, its record before, and whether a
    read in this sync confirmed which dossier it is."""

    current: DossierState | None
    read_at: float
    previous: DossierRecord | None
    confirmed: bool


Planner = Callable[[Known], Awaitable[tuple[DesiredCustomer, list[Step]]]]
"""What to want and the steps to get there, from the dossier as known."""


async def known_dossier(
    context: SyncContext, dossier_number: str, kind: KlantKind, *, trust: bool = True
) -> Known:
    memory = context.memory
    previous = memory.get(dossier_number)
    trusted = memory.trusted(dossier_number) if trust else None
    if trusted is not None:
        return Known(trusted, trusted.read_at, previous, confirmed=False)
    read_at = memory.now()
    klant = previous.klant if previous is not None else None
    remembered = (
        (previous.dossier_id, KlantState(kind=klant.kind, id=klant.id))
        if previous is not None and klant is not None
        else None
    )
    current = await read_dossier_core(context.elements, dossier_number, kind, remembered)
    return Known(current, read_at, previous, confirmed=True)


async def identity_confirmed(context: SyncContext, dossier_id: int, dossier_number: str) -> bool:
    """One read before the first write into a klantdossier no search of this sync confirmed:
    it still carries the dossier number and is not deleted (docs/reference/events.md). When
    not, the record is durably forgotten, so this sync (or the next attempt) starts from a
    search."""
    dossier = await context.elements.dossier(dossier_id)
    if dossier is not None and dossier.carries(dossier_number):
        return True
    log.warning(
        "the remembered klantdossier no longer carries the dossier number or is deleted; "
        "searching again",
        dossier_id=dossier_id,
    )
    await context.memory.forget(dossier_number, context.event)
    return False


async def planned(
    context: SyncContext, dossier_number: str, kind: KlantKind, planner: Planner
) -> tuple[Known, DesiredCustomer, list[Step]]:
    """Plan from the dossier as known, its identity confirmed before any step is applied."""
    context.event.progress("reading Elements and planning")
    known = await known_dossier(context, dossier_number, kind)
    wanted, steps = await planner(known)
    if not steps or known.confirmed or known.current is None:
        return known, wanted, steps
    if await identity_confirmed(context, known.current.dossier_id, dossier_number):
        known.confirmed = True
        return known, wanted, steps
    known = await known_dossier(context, dossier_number, kind, trust=False)
    wanted, steps = await planner(known)
    return known, wanted, steps


async def applied_and_remembered(
    context: SyncContext,
    known: Known,
    wanted: DesiredCustomer,
    steps: list[Step],
    *,
    upstream: DesiredCustomer,
    portal: PortalLocator | None = None,
    origins: Origins = CUSTOMER_ORIGINS,
) -> Applied:
    """Apply a customer plan whose every value Elements takes (`origins` name them when
    not), and remember what Elements holds after it.

    The record is durably marked unread before the first write. When a step fails, of
    whatever kind, the steps before it are remembered as done and the failed one as
    unknown: what a customer did through a form stands even when a later field of the form
    fails, and the next sync neither undoes it nor writes it twice.
    """
    check_lengths(steps, origins)
    context.event.progress("writing to Elements")
    if steps:
        await context.memory.before_writes(wanted.dossier_number, context.event)
    try:
        start = Applied.on(known.current, confirmed=known.confirmed)
        applied = await apply_plan(context.elements, steps, start)
    except SyncError as failed:
        if failed.applied is not None and failed.applied.writes:
            await remember_dossier(
                context,
                known,
                wanted,
                failed.applied,
                upstream=upstream,
                portal=portal,
                unsure=failed.unsure,
            )
        raise
    await remember_dossier(context, known, wanted, applied, upstream=upstream, portal=portal)
    return applied


async def remember_dossier(
    context: SyncContext,
    known: Known,
    wanted: DesiredCustomer,
    applied: Applied,
    *,
    upstream: DesiredCustomer,
    portal: PortalLocator | None = None,
    unsure: Step | None = None,
) -> None:
    """Keep what Elements holds after `applied` (nothing is written when nothing changed),
    with what `unsure` may have changed as unknown; `upstream` as the sync gave it."""
    context.event.progress("saving the record")
    after, still_trusted = without_unsure(state_after(known.current, wanted, applied), unsure)
    last = known.previous.upstream if known.previous and known.previous.read_at > 0 else None
    record = record_of(
        after,
        upstream=synced_upstream(upstream, last=last, before=known.current, after=after),
        read_at=known.read_at if still_trusted else 0.0,
        previous=known.previous,
        medewerker_id=applied.medewerker_id,
        portal=portal,
        created=applied.created_dossier,
    )
    await context.memory.remember(record)


# The record and the dossier it describes (pure)


def _klant_after(
    before: KlantState | None, wanted: DesiredCustomer, applied: Applied
) -> KlantState | None:
    if applied.klant is None:
        return None
    kind, klant_id = applied.klant
    if before is not None and (before.kind, before.id) == applied.klant:
        klant = before
    else:  # created by this plan: it holds only what the plan added
        klant = KlantState(kind=kind, id=klant_id, adressen=(), emails=(), phones=())
    added: dict[str, object] = {}
    if applied.new_adres_id is not None and wanted.adres is not None and klant.adressen is not None:
        added["adressen"] = (*klant.adressen, StoredAdres(applied.new_adres_id, wanted.adres))
    if applied.email_added and wanted.email and klant.emails is not None:
        added["emails"] = (*klant.emails, wanted.email)
    if applied.phone_added and wanted.phone and klant.phones is not None:
        added["phones"] = (*klant.phones, wanted.phone)
    return klant.model_copy(update=added)


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
        dossier_number=wanted.dossier_number,
        dossier_id=applied.dossier(),
        standaard_adres=standaard,
        klant=_klant_after(before.klant if before else None, wanted, applied),
    )


_LIST_ADDED_TO: dict[type[Step], str] = {
    AddAdres: "adressen",
    AddEmail: "emails",
    AddPhone: "phones",
}


def without_unsure(state: DossierState, unsure: Step | None) -> tuple[DossierState, bool]:
    """`state` with the list a step of unknown outcome may have added to as unread, and
    whether the rest still says what Elements holds. A step that may have made the dossier
    or the klant, or moved the correspondentieadres, leaves the dossier to be read again."""
    if unsure is None:
        return state, True
    added_to = _LIST_ADDED_TO.get(type(unsure))
    if added_to is None or state.klant is None:
        return state, False
    unread = state.klant.model_copy(update={added_to: None})
    return state.model_copy(update={"klant": unread}), True


def synced_upstream(
    upstream: DesiredCustomer,
    *,
    last: DesiredCustomer | None,
    before: DossierState | None,
    after: DossierState,
) -> DesiredCustomer:
    """What the record may call synced from upstream: only what Elements holds because this
    worker wrote it or read it there.

    Upstream's address counts as synced when Elements holds it now. Otherwise (a form's own
    address, an address step that failed) the address stays the one of the last sync; with
    no last sync, the one Elements held before this sync, as read, else the one it holds
    now. So a portal move that no sync wrote is still a change for the next one
    (`wanted_customer`), and a form's address stands only while upstream's is the same.
    """
    held = after.standaard_adres.adres if after.standaard_adres else None
    if upstream.adres is None or (held is not None and held.key() == upstream.adres.key()):
        return upstream
    if last is not None:
        return replace(upstream, adres=last.adres)
    read = before.standaard_adres.adres if before and before.standaard_adres else held
    return replace(upstream, adres=read)


def record_of(
    state: DossierState,
    *,
    upstream: DesiredCustomer | None,
    read_at: float,
    previous: DossierRecord | None,
    medewerker_id: int | None = None,
    portal: PortalLocator | None = None,
    created: bool = False,
) -> DossierRecord:
    """The record of `state`; contracts and medewerker carry over from `previous` when it
    describes the same dossier, the portal locator when no new one is given. Only a dossier
    this sync `created` is known to hold no contract besides those the record names."""
    same = previous if previous is not None and previous.dossier_id == state.dossier_id else None
    return DossierRecord(
        dossier_number=state.dossier_number,
        dossier_id=state.dossier_id,
        standaard_adres=state.standaard_adres,
        klant=state.klant,
        medewerker_id=medewerker_id
        if medewerker_id is not None or same is None
        else same.medewerker_id,
        contracts=dict(same.contracts) if same else {},
        contracts_complete=created or (same is not None and same.contracts_complete),
        upstream=upstream,
        portal=portal or (previous.portal if previous else None),
        read_at=read_at,
    )


def wanted_customer(
    desired: DesiredCustomer, record: DossierRecord | None, current: DossierState | None
) -> DesiredCustomer:
    """What to make Elements hold: upstream's values, except an address upstream did not
    change since the last sync, which stays the one Elements holds (`current`).

    That is how a customer's own change through a form stands (docs/reference/events.md, "A
    customer's form stands") until the portal's address changes; e-mail addresses and phone
    numbers are only ever added, so upstream's are wanted whatever a form added beside them. A
    record marked unread says nothing of the last sync (a crash or a failure may have come
    between its writes and its record), so its upstream values decide nothing.
    """
    last = record.upstream if record is not None and record.read_at > 0 else None
    held = current.standaard_adres if current is not None else None
    if last is None or held is None or _adres_key(desired.adres) != _adres_key(last.adres):
        return desired
    return replace(desired, adres=held.adres)


def _adres_key(adres: Adres | None) -> tuple[str, ...] | None:
    return None if adres is None else adres.key()
