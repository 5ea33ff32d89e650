"""The forms prefill: the fields a portal form can show for a customer, read, never written.

Elements' current values win over the portal's: a change the customer made through an
earlier form is in Elements before the portal knows it. The portal's address is split
as a sync would store it (`customer_plan.portal_adres`). What Elements holds comes from the
dossier's record (`app.state`) — a customer waits in the portal, so the answer must not
queue behind a backlog for the Elements rate limit. Only a dossier the worker has no
record of is read from Elements, with the pipeline's own reads (`reads`), and for at
most `FORMS_PREFILL_ELEMENTS_TIMEOUT_S`: after that the portal's values are the answer.
"""

from __future__ import annotations

import asyncio

import structlog

from app.clients.portal import PortalCustomer
from app.domain.model import Adres, DossierState
from app.pipeline.context import SyncContext
from app.pipeline.customer_plan import portal_adres
from app.pipeline.reads import read_contacts, read_dossier_core
from app.pipeline.upstream import linked_customer

log = structlog.get_logger(__name__)


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


def _elements_fields(state: DossierState) -> dict[str, str | None]:
    """The standaard correspondentieadres and the klant's newest e-mail address and phone."""
    values = _address_fields(state.standaard_adres.adres if state.standaard_adres else None)
    klant = state.klant
    for name, listed in (
        ("email", klant.emails if klant else None),
        ("phone", klant.phones if klant else None),
    ):
        if listed:
            values[name] = listed[-1]
    return values


class Prefill:
    """What the HTTP side's `/forms/prefill` asks (`app.web.forms.PrefillSource`)."""

    def __init__(self, context: SyncContext, *, elements_timeout_s: float = 0.8) -> None:
        self._context = context
        self._elements_timeout_s = elements_timeout_s

    async def prefill(self, customer_id: str) -> dict[str, str]:
        """The known, non-empty prefill fields; raises `CustomerNotFound` for an unknown customer."""
        context = self._context
        number, customer = await linked_customer(
            context.portal, customer_id, fresh_after=context.event.arrived
        )
        values = _portal_fields(customer)
        record = context.memory.get(number)
        if record is not None:
            values.update(_elements_fields(record))
        else:
            try:
                async with asyncio.timeout(self._elements_timeout_s):
                    values.update(await self._read_elements(number))
            except TimeoutError:
                log.info("prefill answered from the portal: Elements is busy", dossier=number)
        return {name: value for name, value in values.items() if value}

    async def _read_elements(self, number: str) -> dict[str, str | None]:
        context = self._context
        async with context.locators_checked(number):
            state = await read_dossier_core(context.elements, number, "particulier")
            if state is None:
                return {}
            klant = state.klant
            if klant is not None:
                elements, dossier_id = context.elements, state.dossier_id
                emails = await read_contacts(elements, dossier_id, klant, "emailadressen")
                phones = await read_contacts(elements, dossier_id, klant, "telefoonnummers")
                klant = klant.model_copy(update={"emails": emails, "phones": phones})
            return _elements_fields(state.model_copy(update={"klant": klant}))
