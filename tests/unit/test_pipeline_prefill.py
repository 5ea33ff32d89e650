"""The forms prefill on the core without Kafka: Elements' values over the portal's, read only."""

from __future__ import annotations

import pytest

from app.errors import CustomerNotFound
from app.events import CustomerChanged, FormSubmitted
from app.pipeline.customer import sync_customer
from app.pipeline.form import sync_form
from app.pipeline.prefill import Prefill
from app.sandbox.core import Core


async def test_prefill_gives_elements_values_over_the_portals(core: Core) -> None:
    customer = core.seed(0)
    await sync_customer(core.context, CustomerChanged(dossierNumber=customer.dossier_number))
    await sync_form(
        core.context,
        FormSubmitted(
            customerId=customer.portal_id,
            formId="frm_contact",
            fields={"email": "nieuw@example.nl", "houseNumber": "14"},
        ),
    )
    core.portal.update_customer(
        customer.portal_id, address="Kerkstraat 5", zipCode="3511 AA", city="Utrecht"
    )
    writes = len(core.writes())

    values = await Prefill(core.context).prefill(customer.portal_id)

    assert values == {
        "email": "nieuw@example.nl",
        "phone": "+31 6 10000000",
        "street": "Hoofdstraat",
        "houseNumber": "14",
        "postcode": "1000AB",
        "city": "Amsterdam",
    }
    assert len(core.writes()) == writes


async def test_prefill_of_a_customer_elements_lacks_gives_the_portal_address_as_a_sync_stores_it(
    core: Core,
) -> None:
    customer = core.seed(0)

    values = await Prefill(core.context).prefill(customer.portal_id)

    assert values == {
        "email": "klant0@example.nl",
        "phone": "+31 6 10000000",
        "street": "Hoofdstraat",
        "houseNumber": "12",
        "houseNumberAddition": "A",
        "postcode": "1000AB",
        "city": "Amsterdam",
    }
    assert [(r.method, r.path) for r in core.data_requests()] == [
        ("GET", "/api/data/klantdossiers")
    ]


async def test_prefill_for_a_customer_the_portal_does_not_know_raises_customer_not_found(
    core: Core,
) -> None:
    with pytest.raises(CustomerNotFound):
        await Prefill(core.context).prefill("cst_unknown")
