"""form.submitted's entry point on the core without Kafka: only the submitted fields change."""

from __future__ import annotations

from typing import Any

from app.events import CustomerChanged, FormSubmitted
from app.pipeline.customer import sync_customer
from app.pipeline.form import sync_form
from app.sandbox.core import Core
from app.service import Outcome


def form(customer_id: str, **fields: Any) -> FormSubmitted:
    return FormSubmitted(customerId=customer_id, formId="frm_contact", fields=fields)


async def handle(core: Core, submitted: FormSubmitted) -> Outcome:
    """form.submitted through the outcome ladder, as the consumer hands it over."""
    return await core.handle("form.submitted", submitted.model_dump())


async def test_a_form_applies_only_its_fields_and_names_the_ones_it_ignored(core: Core) -> None:
    customer = await core.synced_customer(0)
    seen = len(core.writes())

    synced = await sync_form(
        core.context,
        form(
            customer.portal_id,
            houseNumber="14B",
            email="nieuw@example.nl",
            phone="06-12345678",
            colour="red",
            city="",
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
    assert [p["naam"] for p in klant["telefoonnummers"]] == ["+31 6 10000000", "06-12345678"]
    assert [(r.method, r.path) for r in core.writes()[seen:]] == [
        (w.method, w.path) for w in synced.writes
    ]
    assert [w.path.rsplit("/", 1)[-1] for w in synced.writes] == [
        "adressen",
        str(dossier["id"]),
        "emailadressen",
        "telefoonnummers",
    ]


async def test_a_form_with_nothing_new_writes_nothing(core: Core) -> None:
    customer = await core.synced_customer(0)

    synced = await sync_form(
        core.context, form(customer.portal_id, email="KLANT0@example.nl", city="Amsterdam")
    )

    assert (synced.writes, synced.ignored_fields) == ((), ())


async def test_a_form_house_number_with_its_letter_stores_no_second_address(core: Core) -> None:
    customer = core.seed(0)
    core.portal.update_customer(customer.portal_id, address="Hoofdstraat 14-B")
    await sync_customer(core.context, CustomerChanged(dossierNumber=customer.dossier_number))

    synced = await sync_form(
        core.context, form(customer.portal_id, street="Hoofdstraat", houseNumber="14B")
    )

    assert synced.writes == ()
    dossier = core.dossier(customer.dossier_number)
    (adres,) = core.klant(customer.dossier_number)["adressen"]
    assert (adres["straat"], adres["nummer"], adres["toevoeging"]) == ("Hoofdstraat", "14", "B")
    assert dossier["_embedded"]["standaardcorrespondentieadres"]["id"] == adres["id"]


async def test_a_form_for_an_unknown_portal_customer_fails_and_is_dead_lettered(
    core: Core,
) -> None:
    outcome = await handle(core, form("cst_unknown", email="x@example.nl"))

    result = outcome.result.data
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == ("customer_not_found", False)
    assert outcome.dead_letter_reason == "customer_not_found"
    assert core.writes() == []


async def test_a_form_with_an_invalid_email_fails_naming_email_and_writes_nothing(
    core: Core,
) -> None:
    customer = await core.synced_customer(0)
    seen = len(core.elements.requests)

    outcome = await handle(
        core, form(customer.portal_id, email="piet(at)example.nl", houseNumber="14")
    )

    result = outcome.result.data
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.code, result.error.message) == (
        "invalid_form_field",
        "form field email is not an e-mail address",
    )
    assert result.operations == []
    assert core.elements.requests[seen:] == []
    assert outcome.dead_letter_reason == "invalid_form_field"
