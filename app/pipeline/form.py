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
from app.pipeline.current import read_adressen
from app.pipeline.customer import apply_customer_plan
from app.pipeline.form_changes import FormChanges
from app.pipeline.mapping import desired_customer
from app.pipeline.model import address_is_current
from app.pipeline.plan import plan_customer
from app.pipeline.remembered import known_dossier, remember_dossier
from app.pipeline.resolve import linked_customer


async def sync_form(context: SyncContext, event: FormSubmitted) -> Synced:
    """Apply the submitted fields; the record names the fields the form ignored."""
    changes = FormChanges.from_fields(event.fields)
    number, customer = await linked_customer(context.portal, event.customerId)
    structlog.contextvars.bind_contextvars(dossier_number=number)
    account = await context.anva.account_for_dossier(number)
    base = desired_customer(number, account, customer)
    async with context.dossier_locks.hold(number), context.locators_checked(number):
        wanted = replace(base, adres=None, email=changes.email, phone=changes.phone)
        known = await known_dossier(context, wanted)
        current = known.current
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
        steps = plan_customer(desired, current, context.defaults)
        applied = await apply_customer_plan(context, steps, current, changes.origins())
        previous = known.previous.upstream if known.previous else None
        await remember_dossier(context, known, desired, applied, upstream=previous or base)
    return Synced(applied.dossier(), applied.writes, ignored_fields=tuple(changes.ignored))
