"""customer.changed: resolve the customer in ANVA and the portal, read its dossier, plan, apply.

`sync_dossier` is the core the contract entry point shares: a contract arriving before
its customer syncs the customer first. `apply_customer_plan` is the apply the form
entry point shares: every value of a customer plan is checked before its first write.
"""

from __future__ import annotations

from app.events import CustomerChanged
from app.pipeline.apply import Applied, apply_plan
from app.pipeline.context import SyncContext, Synced
from app.pipeline.current import read_dossier
from app.pipeline.limits import Origins, check_lengths
from app.pipeline.mapping import CUSTOMER_ORIGINS, desired_customer
from app.pipeline.model import DesiredCustomer, DossierState
from app.pipeline.plan import plan_customer
from app.pipeline.resolve import resolve_customer
from app.pipeline.steps import Step


async def sync_customer(context: SyncContext, event: CustomerChanged) -> Synced:
    """Make the dossier hold the customer as ANVA and the portal know it now."""
    desired = await resolved_customer(context, event.dossierNumber, event.portalCustomerId)
    async with context.dossier_locks.hold(desired.dossier_number):
        applied = await sync_dossier(context, desired)
    return Synced(applied.dossier(), applied.writes)


async def resolved_customer(
    context: SyncContext, dossier_number: str, portal_customer_id: str | None = None
) -> DesiredCustomer:
    upstream = await resolve_customer(
        context.anva, context.portal, dossier_number, portal_customer_id
    )
    return desired_customer(dossier_number, upstream.account, upstream.portal)


async def sync_dossier(context: SyncContext, desired: DesiredCustomer) -> Applied:
    """Read, plan and apply `desired`; the caller holds the dossier's lock."""
    async with context.locators_checked():
        steps, current = await planned_dossier(context, desired)
        return await apply_customer_plan(context, steps, current)


async def planned_dossier(
    context: SyncContext, desired: DesiredCustomer
) -> tuple[list[Step], DossierState | None]:
    """The writes that would make the dossier hold `desired`, and the dossier they start on:
    the read and plan half of `sync_dossier`, which the dry run (`python -m app plan`) shares."""
    current = await read_dossier(context.elements, desired, context.klant_locators)
    return plan_customer(desired, current, context.defaults), current


async def apply_customer_plan(
    context: SyncContext,
    steps: list[Step],
    current: DossierState | None,
    origins: Origins = CUSTOMER_ORIGINS,
) -> Applied:
    """Apply a plan whose every value Elements takes; `origins` name them when not."""
    check_lengths(steps, origins)
    applied = await apply_plan(
        context.elements, steps, Applied.on(current), medewerkers=context.medewerkers
    )
    if applied.klant is not None:
        context.klant_locators[applied.dossier()] = applied.klant
    return applied
