"""form.submitted: apply only the fields a customer changed in a portal form to its dossier.

The portal customer's `integrationId` gives the dossier number. The rest of the
customer (its klant, for a dossier that does not exist yet) comes from ANVA and the
portal as for `customer.changed`; what the form gives is laid over what the dossier
holds now (`form_changes`), so a form that only changes the house number keeps the
street Elements has. The record keeps the upstream values of its last sync, so a
later `customer.changed` leaves the form's values while upstream's stay the same.
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from app.events import FormSubmitted
from app.pipeline.context import SyncContext, Synced
from app.pipeline.current import complete, read_adressen
from app.pipeline.form_changes import FormChanges
from app.pipeline.mapping import desired_customer
from app.pipeline.model import DesiredCustomer, address_is_current
from app.pipeline.plan import plan_customer
from app.pipeline.remembered import Known, applied_and_remembered, planned
from app.pipeline.resolve import linked_customer
from app.pipeline.steps import Step


async def sync_form(context: SyncContext, event: FormSubmitted) -> Synced:
    """Apply the submitted fields; the record names the fields the form ignored."""
    changes = FormChanges.from_fields(event.fields)
    number, customer = await linked_customer(context.portal, event.customerId)
    structlog.contextvars.bind_contextvars(dossier_number=number)
    account = await context.anva.account_for_dossier(number)
    base = desired_customer(number, account, customer)
    wanted = replace(base, adres=None, email=changes.email, phone=changes.phone)

    async def planner(known: Known) -> tuple[DesiredCustomer, list[Step]]:
        current = known.current
        await complete(context.elements, current, wanted)
        if current is None:
            desired = replace(
                base,
                adres=changes.adres_over(base.adres) or base.adres,
                email=changes.email or base.email,
                phone=changes.phone or base.phone,
            )
        else:
            standaard = current.standaard_adres.adres if current.standaard_adres else base.adres
            desired = replace(wanted, adres=changes.adres_over(standaard))
            if not address_is_current(desired, current):
                await read_adressen(context.elements, current)
        return desired, plan_customer(desired, current, context.defaults)

    async with context.owned(number), context.locators_checked(number):
        known, desired, steps = await planned(context, number, base.kind, planner)
        previous = known.previous
        last_sync = previous.upstream if previous is not None and previous.read_at > 0 else None
        applied = await applied_and_remembered(
            context, known, desired, steps, upstream=last_sync or base, origins=changes.origins()
        )
    return Synced(applied.dossier(), applied.writes, ignored_fields=tuple(changes.ignored))
