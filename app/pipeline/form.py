"""form.submitted: apply only the fields a customer changed in a portal form to its dossier.

The submitted fields are read first (`FormChanges`, pure): an e-mail, one phone number,
the address fields laid over the address the dossier holds. The portal customer's
`integrationId` gives the dossier number. The rest of the customer (its klant, for a
dossier that does not exist yet) comes from ANVA and the portal as for
`customer.changed`; what the form gives is laid over what the dossier holds now, so a
form that only changes the house number keeps the street Elements has. The record keeps
the upstream values of its last sync, so a later `customer.changed` leaves the form's
values while upstream's stay the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import structlog

from app.domain.address import (
    categorie_of,
    clean_phone,
    email_problem,
    normalise_postcode,
    phone_problem,
    split_house_number,
)
from app.domain.model import Adres, DesiredCustomer, address_is_current
from app.errors import InvalidFormField
from app.events import FormSubmitted
from app.pipeline.apply import Origins
from app.pipeline.context import SyncContext, Synced
from app.pipeline.customer_plan import CUSTOMER_ORIGINS, desired_customer, plan_customer
from app.pipeline.dossier import KnownDossier, Plan, sync_dossier
from app.pipeline.reads import complete, read_adressen
from app.pipeline.upstream import linked_customer

CONTACT_FIELDS = ("email", "phone")
ADDRESS_FIELDS = ("street", "houseNumber", "houseNumberAddition", "postcode", "city")
FORM_FIELDS = CONTACT_FIELDS + ADDRESS_FIELDS

_ADRES_SOURCES = {
    "adres.straat": ("street",),
    "adres.nummer": ("houseNumber",),
    "adres.toevoeging": ("houseNumberAddition", "houseNumber"),
    "adres.postcode": ("postcode",),
    "adres.plaatsnaam": ("city",),
}
"""The form fields an address part is taken from, the one that wins first."""


def _value(raw: Any) -> str | None:
    """The field as text, trimmed and with runs of whitespace made one space."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    return " ".join(str(raw).split()) or None


def _checked_email(email: str | None) -> str | None:
    if email and (reason := email_problem(email)):
        raise InvalidFormField(f"form field email {reason}")
    return email


def _checked_phone(phone: str | None) -> str | None:
    if phone and (reason := phone_problem(phone)):
        raise InvalidFormField(f"form field phone {reason}")
    return clean_phone(phone) if phone else None


@dataclass(frozen=True)
class FormChanges:
    email: str | None = None
    phone: str | None = None
    address: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> FormChanges:
        """Known fields with a usable value; everything else is named in `ignored`.

        Raises `InvalidFormField` for an e-mail or phone that is not one.
        """
        values = {name: _value(raw) for name, raw in fields.items()}
        ignored = sorted(n for n, v in values.items() if n not in FORM_FIELDS or v is None)
        return cls(
            email=_checked_email(values.get("email")),
            phone=_checked_phone(values.get("phone")),
            address={n: v for n in ADDRESS_FIELDS if (v := values.get(n))},
            ignored=ignored,
        )

    def origins(self) -> Origins:
        """Where each address part comes from: the form field that gave it, else upstream."""
        submitted = {
            part: f"form field {given[0]}"
            for part, names in _ADRES_SOURCES.items()
            if (given := [n for n in names if n in self.address])
        }
        return {**CUSTOMER_ORIGINS, **submitted}

    def adres_over(self, base: Adres | None) -> Adres | None:
        """The submitted address parts over `base`; None when the form has no address field.

        The categorie follows the resulting straat ("Postbus" makes a Postbus address).
        """
        if not self.address:
            return None
        given = self.address
        moved = "street" in given or "houseNumber" in given
        keep_toevoeging = base.toevoeging if base is not None and not moved else None
        if "houseNumber" in given:
            nummer, typed_toevoeging = split_house_number(given["houseNumber"])
        else:
            nummer, typed_toevoeging = (base.nummer if base else None), None
        plaatsnaam = given.get("city") or (base.plaatsnaam if base else None)
        if plaatsnaam is None:
            raise InvalidFormField(
                "form field city is missing: the form changes the address and no city is known"
            )
        straat = given.get("street") or (base.straat if base else None)
        postcode = given.get("postcode")
        return Adres(
            straat=straat,
            nummer=nummer,
            toevoeging=given.get("houseNumberAddition") or typed_toevoeging or keep_toevoeging,
            postcode=normalise_postcode(postcode)
            if postcode
            else (base.postcode if base else None),
            plaatsnaam=plaatsnaam,
            categorie=categorie_of(straat),
        )


async def sync_form(context: SyncContext, event: FormSubmitted) -> Synced:
    """Apply the submitted fields; the record names the fields the form ignored."""
    changes = FormChanges.from_fields(event.fields)
    ticket = context.event
    ticket.progress("reading the portal and ANVA")
    with ticket.waiting(f"the portal to answer for customer {event.customerId}"):
        number, customer = await linked_customer(
            context.portal, event.customerId, fresh_after=ticket.arrived
        )
    structlog.contextvars.bind_contextvars(dossier_number=number)
    with ticket.waiting(f"ANVA to answer for dossier {number}"):
        account = await context.anva.account_for_dossier(number, fresh_after=ticket.arrived)
    desired = desired_customer(number, account, customer)
    async with context.owned(number):
        applied = await sync_dossier(
            context, desired, plan_for=partial(plan_form, changes), origins=changes.origins()
        )
    return Synced(applied.dossier(), applied.writes, ignored_fields=tuple(changes.ignored))


async def plan_form(
    changes: FormChanges, context: SyncContext, desired: DesiredCustomer, known: KnownDossier
) -> Plan:
    """The plan for a form: its fields over the dossier as known. A new dossier gets the
    desired customer with the form's values over it; an existing one only the form's e-mail
    and phone, and its address fields laid over the standaard correspondentieadres."""
    contacts = replace(desired, adres=None, email=changes.email, phone=changes.phone)
    current = await complete(context.elements, known.current, contacts)
    if current is None:
        target = replace(
            desired,
            adres=changes.adres_over(desired.adres) or desired.adres,
            email=changes.email or desired.email,
            phone=changes.phone or desired.phone,
        )
    else:
        standaard = current.standaard_adres.adres if current.standaard_adres else desired.adres
        target = replace(contacts, adres=changes.adres_over(standaard))
        if not address_is_current(target, current):
            current = await read_adressen(context.elements, current)
    return Plan(target, plan_customer(target, current, context.defaults), current)
