"""customer.changed's entry point on the core without Kafka: what Elements receives and holds."""

from __future__ import annotations

from app.events import CustomerChanged
from app.pipeline.customer import sync_customer
from app.sandbox.core import Core


async def test_a_new_customer_gets_a_dossier_with_its_klant_address_email_and_phone(
    core: Core,
) -> None:
    customer = core.seed(0)

    synced = await sync_customer(
        core.context, CustomerChanged(dossierNumber=customer.dossier_number)
    )

    dossier = core.dossier(customer.dossier_number)
    (klant,) = dossier["klanten"]["particulier"]
    (adres,) = klant["adressen"]
    assert synced.dossier_id == dossier["id"]
    assert (klant["voornaam"], klant["tussenvoegsel"], klant["achternaam"]) == (
        "Jan",
        "de",
        "Vries",
    )
    assert (adres["straat"], adres["nummer"], adres["toevoeging"]) == ("Hoofdstraat", "12", "A")
    assert dossier["_embedded"]["standaardcorrespondentieadres"]["id"] == adres["id"]
    assert [e["naam"] for e in klant["emailadressen"]] == ["klant0@example.nl"]
    assert [p["naam"] for p in klant["telefoonnummers"]] == ["+31 6 10000000"]
    assert [(w.method, w.path, w.status) for w in synced.writes] == [
        (r.method, r.path, r.status) for r in core.writes()
    ]
    assert [w.resourceId for w in synced.writes] == [
        dossier["id"],
        klant["id"],
        adres["id"],
        adres["id"],
        klant["emailadressen"][0]["id"],
        klant["telefoonnummers"][0]["id"],
    ]
    assert synced.ignored_fields is None


async def test_an_unchanged_customer_synced_again_costs_no_elements_request(
    core: Core,
) -> None:
    customer = core.seed(0)
    event = CustomerChanged(dossierNumber=customer.dossier_number)
    first = await sync_customer(core.context, event)
    seen = len(core.data_requests())

    again = await sync_customer(core.context, event)

    assert again.dossier_id == first.dossier_id
    assert again.writes == ()
    assert core.data_requests()[seen:] == []
