"""form.submitted's entry point on the core without Kafka: only the submitted fields change."""

from __future__ import annotations

from typing import Any

from app.events import CustomerChanged, FormSubmitted
from app.pipeline.customer import sync_customer
from app.pipeline.form import sync_form
from app.sandbox.core import Core


def form(customer_id: str, **fields: Any) -> FormSubmitted:
    return FormSubmitted(customerId=customer_id, formId="frm_contact", fields=fields)


async def test_a_form_applies_only_its_fields_and_names_the_ones_it_ignored(core: Core) -> None:
    customer = core.seed(0)
    await sync_customer(core.context, CustomerChanged(dossierNumber=customer.dossier_number))
    seen = len(core.writes())

    synced = await sync_form(
        core.context,
        form(
            customer.portal_id, houseNumber="14B", email="nieuw@example.nl", colour="red", city=""
        ),
    )

    dossier = core.dossier(customer.dossier_number)
    (klant,) = dossier["klanten"]["particulier"]
    standaard = dossier["_embedded"]["standaardcorrespondentieadres"]
    assert synced.ignored_fields == ("city", "colour")
    assert synced.dossier_id == dossier["id"]
    assert (standaard["straat"], standaard["nummer"], standaard["toevoeging"]) == (
        "Hoofdstraat",
        "14",
        "B",
    )
    assert (standaard["postcode"], standaard["plaatsnaam"]) == ("1000AB", "Amsterdam")
    assert [e["naam"] for e in klant["emailadressen"]] == ["klant0@example.nl", "nieuw@example.nl"]
    assert [p["naam"] for p in klant["telefoonnummers"]] == ["+31 6 10000000"]
    assert [(r.method, r.path) for r in core.writes()[seen:]] == [
        (w.method, w.path) for w in synced.writes
    ]
    assert [w.path.rsplit("/", 1)[-1] for w in synced.writes] == [
        "adressen",
        str(dossier["id"]),
        "emailadressen",
    ]


async def test_a_form_that_changes_nothing_writes_nothing(core: Core) -> None:
    customer = core.seed(0)
    await sync_customer(core.context, CustomerChanged(dossierNumber=customer.dossier_number))

    synced = await sync_form(core.context, form(customer.portal_id, email="klant0@example.nl"))

    assert (synced.writes, synced.ignored_fields) == ((), ())
