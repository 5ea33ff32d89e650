"""The forms prefill: the fields a portal form can show for a customer, read, never written.

Elements' current values win over the portal's: a change the customer made through an
earlier form is in Elements before the portal knows it. The portal's address is split
as a sync would store it (`mapping.portal_adres`), and Elements is read with the
pipeline's own reads (`current`): the dossier with its standaard correspondentieadres,
then the klant's newest e-mail address and phone number.
"""

from __future__ import annotations

from app.clients.elements import ContactList
from app.clients.portal import PortalCustomer
from app.pipeline.context import SyncContext
from app.pipeline.current import read_contacts, read_dossier_core
from app.pipeline.mapping import portal_adres
from app.pipeline.model import Adres
from app.pipeline.resolve import linked_customer

CONTACT_LISTS: tuple[tuple[str, ContactList], ...] = (
    ("email", "emailadressen"),
    ("phone", "telefoonnummers"),
)


def _address_fields(adres: Adres | None) -> dict[str, str | None]:
    if adres is None:
        return {}
    return {
        "street": adres.straat,
        "houseNumber": adres.nummer,
        "houseNumberAddition": adres.toevoeging,
        "postcode": adres.postcode,
        "city": adres.plaatsnaam,
    }


def _portal_fields(customer: PortalCustomer) -> dict[str, str | None]:
    return {
        "email": customer.primaryEmail,
        "phone": customer.phone,
        **_address_fields(portal_adres(customer)),
    }


class Prefill:
    """What the HTTP side's `/forms/prefill` asks (`app.web.forms.PrefillSource`)."""

    def __init__(self, context: SyncContext) -> None:
        self._context = context

    async def prefill(self, customer_id: str) -> dict[str, str]:
        """The known, non-empty prefill fields; raises `CustomerNotFound` for an unknown customer."""
        context = self._context
        number, customer = await linked_customer(context.portal, customer_id)
        values = _portal_fields(customer)
        async with context.locators_checked():
            state = await read_dossier_core(
                context.elements, number, "particulier", context.klant_locators
            )
            if state is not None and state.standaard_adres is not None:
                values.update(_address_fields(state.standaard_adres.adres))
            if state is not None and state.klant is not None:
                for name, which in CONTACT_LISTS:
                    found = await read_contacts(context.elements, state.id, state.klant, which)
                    if found:
                        values[name] = found[-1]
        return {name: value for name, value in values.items() if value}
