"""form.submitted end to end (published as the HTTP ingress publishes it)."""

from __future__ import annotations

from typing import Any

import pytest

from app.sandbox.simulators.seed import seed_customer
from app.sandbox.world import Sandbox
from tests.e2e.helpers import only_dossier, only_klant, sync, synced_customer

pytestmark = pytest.mark.e2e


async def submit(sandbox: Sandbox, customer_id: str, fields: dict[str, Any]) -> str:
    return await sandbox.publish(
        "form.submitted",
        {"customerId": customer_id, "formId": "frm_settings", "fields": fields},
        key=customer_id,
    )


async def test_a_form_changes_email_phone_and_house_number_and_names_ignored_fields(
    sandbox: Sandbox,
) -> None:
    customer = await synced_customer(sandbox)

    await submit(
        sandbox,
        customer.portal_id,
        {
            "email": "nieuw@example.nl",
            "phone": "06-12345678",
            "houseNumber": "14",
            "newsletter": True,
        },
    )
    _, result = await sandbox.results(2)

    assert result.data.status == "succeeded"
    assert result.data.ignoredFields == ["newsletter"]
    dossier = only_dossier(sandbox, customer.dossier_number)
    klant = only_klant(dossier)
    assert "nieuw@example.nl" in [e["naam"] for e in klant["emailadressen"]]
    assert "06-12345678" in [p["naam"] for p in klant["telefoonnummers"]]
    standaard = dossier["_embedded"]["standaardcorrespondentieadres"]
    assert (standaard["straat"], standaard["nummer"], standaard["toevoeging"]) == (
        "Hoofdstraat",
        "14",
        "",
    )


async def test_a_form_with_nothing_new_writes_nothing(sandbox: Sandbox) -> None:
    customer = await synced_customer(sandbox)

    await submit(sandbox, customer.portal_id, {"email": "KLANT0@example.nl", "city": "Amsterdam"})
    _, result = await sandbox.results(2)

    assert result.data.status == "succeeded"
    assert result.data.operations == []


async def test_a_form_for_an_unknown_portal_customer_fails_and_is_dead_lettered(
    sandbox: Sandbox,
) -> None:
    await sandbox.start_worker()

    await submit(sandbox, "cst_unknown", {"email": "x@example.nl"})
    (result,) = await sandbox.results(1)

    assert result.data.status == "failed"
    assert result.data.error is not None
    assert result.data.error.code == "customer_not_found"
    assert len(await sandbox.read(sandbox.topics.dead_letter, 1)) == 1


async def test_a_form_house_number_with_its_letter_stores_no_second_address(
    sandbox: Sandbox,
) -> None:
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    sandbox.portal.update_customer(customer.portal_id, address="Hoofdstraat 14-B")
    await sandbox.start_worker()
    await sync(sandbox, customer.dossier_number)
    await sandbox.results(1)

    await submit(sandbox, customer.portal_id, {"street": "Hoofdstraat", "houseNumber": "14B"})
    _, result = await sandbox.results(2)

    assert result.data.status == "succeeded"
    assert result.data.operations == []
    dossier = only_dossier(sandbox, customer.dossier_number)
    (adres,) = only_klant(dossier)["adressen"]
    assert (adres["straat"], adres["nummer"], adres["toevoeging"]) == ("Hoofdstraat", "14", "B")
    assert dossier["_embedded"]["standaardcorrespondentieadres"]["id"] == adres["id"]


async def test_a_form_with_an_invalid_email_fails_naming_email_and_writes_nothing(
    sandbox: Sandbox,
) -> None:
    customer = await synced_customer(sandbox)
    seen = len(sandbox.elements.requests)

    await submit(sandbox, customer.portal_id, {"email": "piet(at)example.nl", "houseNumber": "14"})
    _, result = await sandbox.results(2)

    assert result.data.status == "failed"
    assert result.data.error is not None
    assert result.data.error.code == "invalid_form_field"
    assert result.data.error.message == ("form field email is not an e-mail address")
    assert result.data.operations == []
    assert sandbox.elements.requests[seen:] == []
    assert len(await sandbox.read(sandbox.topics.dead_letter, 1)) == 1
