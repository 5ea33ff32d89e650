"""One dossier's sync, top to bottom: `sync_dossier`, and the steps it takes in order.

What is known of the dossier → plan → confirm its identity (plan again, once, if it moved) →
mark the record unread → apply → remember. Every entry point that writes a customer into a
dossier runs it: `customer.changed` and a contract whose dossier needs syncing with the
plan for the desired customer (`plan_desired`), a form with its own (`form.plan_form`).

Only what the plan needs to compare is read (`reads`). A dossier whose record is trusted
(`DossierMemory.trusted`) is planned against the record, with no read of Elements but for
a list the record does not know and the plan needs; any other is found by a search, and its
record then counts from that read.

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

from app.clients.elements import KlantKind
from app.domain.model import DesiredCustomer, DossierState, KlantState
from app.errors import SyncError
from app.pipeline.apply import Applied, Origins, Step, apply_plan, check_lengths
from app.pipeline.context import SyncContext
from app.pipeline.customer_plan import CUSTOMER_ORIGINS, plan_customer, target_customer
from app.pipeline.dossier_record import record_of, state_after, synced_desired, without_unsure
from app.pipeline.reads import complete, read_dossier_core
from app.state.record import DossierRecord, PortalLocator

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class KnownDossier:
    """What a sync knows of the dossier before it plans: what Elements holds (`current`, None
    for no dossier yet) and when that was read, the dossier's record before this sync, and
    whether a read in this sync confirmed which dossier it is."""

    current: DossierState | None
    read_at: float
    record: DossierRecord | None
    confirmed: bool


@dataclass(frozen=True)
class Plan:
    """What the sync makes Elements hold (`target`), the steps that get it there, and the
    dossier they start on: the one known, with what planning had to read to compare."""

    target: DesiredCustomer
    steps: list[Step]
    current: DossierState | None


PlanFor = Callable[[SyncContext, DesiredCustomer, KnownDossier], Awaitable[Plan]]
"""How an entry point plans `desired` on the dossier as known."""


async def sync_dossier(
    context: SyncContext,
    desired: DesiredCustomer,
    *,
    plan_for: PlanFor | None = None,
    origins: Origins = CUSTOMER_ORIGINS,
    portal: PortalLocator | None = None,
) -> Applied:
    """Make the dossier hold `desired` (planned by `plan_for`, `plan_desired` by default) and
    remember what it holds after; the caller owns the dossier. `origins` name where each value
    came from; `portal` is where the portal listed the customer, for the record.

    An unchanged customer whose record is trusted costs no Elements request at all.
    """
    plan_for = plan_for or plan_desired
    number = desired.dossier_number
    async with context.locators_checked(number):
        context.event.progress("reading Elements and planning")
        known = await known_dossier(context, number, desired.kind)
        plan = await plan_for(context, desired, known)
        if plan.steps and not known.confirmed and known.current is not None:
            if await identity_confirmed(context, known.current.dossier_id, number):
                known = replace(known, confirmed=True)
            else:
                known = await searched_dossier(context, number, desired.kind)
                plan = await plan_for(context, desired, known)
        check_lengths(plan.steps, origins)
        context.event.progress("writing to Elements")
        if plan.steps:
            await mark_unread(context, number)
        try:
            start = Applied.on(plan.current, confirmed=known.confirmed)
            applied = await apply_plan(context.elements, plan.steps, start)
        except SyncError as failed:
            if failed.applied is not None and failed.applied.writes:
                await remember_dossier(
                    context, known, plan, failed.applied, desired, portal, unsure=failed.unsure
                )
            raise
        await remember_dossier(context, known, plan, applied, desired, portal)
        return applied


async def known_dossier(context: SyncContext, dossier_number: str, kind: KlantKind) -> KnownDossier:
    """The dossier as its record has it while the record is trusted, else as a search finds it."""
    memory = context.memory
    trusted = memory.trusted(dossier_number)
    if trusted is not None:
        return KnownDossier(trusted, trusted.read_at, memory.get(dossier_number), confirmed=False)
    return await searched_dossier(context, dossier_number, kind)


async def searched_dossier(
    context: SyncContext, dossier_number: str, kind: KlantKind
) -> KnownDossier:
    """The dossier as a search of Elements finds it, which confirms which dossier it is; the
    klant its record names spares listing the klanten when it is the same dossier."""
    record = context.memory.get(dossier_number)
    read_at = context.memory.now()
    klant = record.klant if record is not None else None
    remembered = (
        (record.dossier_id, KlantState(kind=klant.kind, id=klant.id))
        if record is not None and klant is not None
        else None
    )
    current = await read_dossier_core(context.elements, dossier_number, kind, remembered)
    return KnownDossier(current, read_at, record, confirmed=True)


async def plan_desired(context: SyncContext, desired: DesiredCustomer, known: KnownDossier) -> Plan:
    """The plan for `customer.changed`: the target customer (a form's address stands while
    upstream's is unchanged), compared with the dossier as known and what that lacks."""
    target = target_customer(desired, known.record, known.current)
    current = await complete(context.elements, known.current, target)
    return Plan(target, plan_customer(target, current, context.defaults), current)


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


async def mark_unread(context: SyncContext, dossier_number: str) -> None:
    """Durably mark the record unread before the first write: a crash or a lost answer in
    between makes the next attempt read Elements instead of trusting the record."""
    await context.memory.before_writes(dossier_number, context.event)


async def remember_dossier(
    context: SyncContext,
    known: KnownDossier,
    plan: Plan,
    applied: Applied,
    desired: DesiredCustomer,
    portal: PortalLocator | None,
    *,
    unsure: Step | None = None,
) -> None:
    """Keep what Elements holds after `applied` (nothing is written when nothing changed),
    with what `unsure` may have changed as unknown, and `desired` as far as it was synced.

    After a failed step the steps before it are remembered as done and the failed one as
    unknown: what a customer did through a form stands even when a later field of the form
    fails, and the next sync neither undoes it nor writes it twice.
    """
    context.event.progress("saving the record")
    after, still_trusted = without_unsure(state_after(plan.current, plan.target, applied), unsure)
    last = known.record.upstream if known.record and known.record.read_at > 0 else None
    record = record_of(
        after,
        desired=synced_desired(desired, last=last, before=plan.current, after=after),
        read_at=known.read_at if still_trusted else 0.0,
        replacing=known.record,
        medewerker_id=applied.medewerker_id,
        portal=portal,
        created=applied.created_dossier,
    )
    await context.memory.remember(record)
