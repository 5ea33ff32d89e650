"""customer.changed's entry point on the core without Kafka: what Elements receives and holds."""

from __future__ import annotations

import asyncio

from app.events import CustomerChanged
from app.pipeline.customer import sync_customer
from app.sandbox.core import FAST_RETRY, Core, core_settings
from app.sandbox.simulators.seed import seed_in_anva, seed_in_portal
from app.service import Outcome
from app.settings import PortalSettings

BUSINESS = 2  # the seed's first business: ANVA knows no person for it


def changed(dossier_number: str) -> CustomerChanged:
    return CustomerChanged(dossierNumber=dossier_number)


async def handle(core: Core, dossier_number: str, **data: str) -> Outcome:
    """customer.changed through the outcome ladder, as the consumer hands it over."""
    return await core.handle("customer.changed", {"dossierNumber": dossier_number, **data})


async def test_a_new_customer_gets_a_dossier_with_its_klant_address_email_and_phone(
    core: Core,
) -> None:
    customer = core.seed(0)

    synced = await sync_customer(core.context, changed(customer.dossier_number))

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


async def test_customer_without_a_person_in_anva_becomes_a_zakelijk_klant(core: Core) -> None:
    customer = core.seed(BUSINESS)

    synced = await sync_customer(core.context, changed(customer.dossier_number))

    dossier = core.dossier(customer.dossier_number)
    assert synced.dossier_id == dossier["id"]
    assert dossier["klanten"]["particulier"] == []
    assert core.klant(customer.dossier_number)["naam"] == "Berg Advies B.V."
    assert dossier["_embedded"]["standaardcorrespondentieadres"]["straat"] == "1e Jan Steenstraat"


async def test_an_unchanged_customer_synced_again_costs_no_elements_request(
    core: Core,
) -> None:
    customer = core.seed(0)
    event = changed(customer.dossier_number)
    first = await sync_customer(core.context, event)
    seen = len(core.elements.requests)

    again = await sync_customer(core.context, event)

    assert again.dossier_id == first.dossier_id
    assert again.writes == ()
    assert core.elements.requests[seen:] == []


async def test_same_state_synced_by_several_events_leaves_one_of_everything(core: Core) -> None:
    customers = [core.seed(i) for i in range(3)]

    outcomes = await asyncio.gather(
        *(handle(core, c.dossier_number) for _ in range(3) for c in customers)
    )

    assert {o.result.data.status for o in outcomes} == {"succeeded"}
    assert sum(len(o.result.data.operations) for o in outcomes) == 18
    assert len(core.writes()) == 18
    for customer in customers:
        klant = core.klant(customer.dossier_number)
        assert len(klant["adressen"]) == len(klant["emailadressen"]) == 1
        assert len(klant["telefoonnummers"]) == 1


async def test_address_change_adds_the_address_and_moves_the_correspondentieadres(
    core: Core,
) -> None:
    customer = await core.synced_customer(0)
    core.portal.update_customer(
        customer.portal_id,
        address="Laan van Meerdervoort 1001 B",
        zipCode="2517 AA",
        city="Den Haag",
    )

    moved = await sync_customer(core.context, changed(customer.dossier_number))

    dossier = core.dossier(customer.dossier_number)
    assert [(w.method, w.path.rsplit("/", 1)[-1]) for w in moved.writes] == [
        ("POST", "adressen"),
        ("PATCH", str(dossier["id"])),
    ]
    standaard = dossier["_embedded"]["standaardcorrespondentieadres"]
    assert (standaard["straat"], standaard["nummer"], standaard["toevoeging"]) == (
        "Laan van Meerdervoort",
        "1001",
        "B",
    )
    assert (standaard["postcode"], standaard["plaatsnaam"]) == ("2517AA", "Den Haag")
    assert len(core.klant(customer.dossier_number)["adressen"]) == 2


async def test_postbus_address_is_stored_with_categorie_postbus(core: Core) -> None:
    customer = core.seed(0)
    core.portal.update_customer(customer.portal_id, address="Postbus 1234")

    await sync_customer(core.context, changed(customer.dossier_number))
    again = await sync_customer(core.context, changed(customer.dossier_number))

    standaard = core.dossier(customer.dossier_number)["_embedded"]["standaardcorrespondentieadres"]
    assert (standaard["straat"], standaard["nummer"], standaard["toevoeging"]) == (
        "Postbus",
        "1234",
        "",
    )
    (adres,) = core.klant(customer.dossier_number)["adressen"]
    assert adres["id"] == standaard["id"]
    # The spec's listings show "default" for Standaard and no other categorie; the simulator
    # renders the others in lower case.
    assert adres["categorie"] == "postbus"
    assert again.writes == ()


async def test_a_house_number_longer_than_elements_allows_fails_before_any_write(
    core: Core,
) -> None:
    customer = core.seed(0)
    core.portal.update_customer(customer.portal_id, address="Hoofdstraat " + "7" * 26)

    outcome = await handle(core, customer.dossier_number)

    result = outcome.result.data
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == ("invalid_customer_data", False)
    assert result.error.message == (
        "adres.nummer from the portal's address is 26 characters; Elements allows 25"
    )
    assert result.operations == []
    assert [r.method for r in core.data_requests()] == ["GET"]


async def test_a_klant_removed_in_elements_is_found_missing_and_created_again(
    core: Core,
) -> None:
    customer = await core.synced_customer(0)
    dossier = core.dossier(customer.dossier_number)
    core.elements.remove_klant(dossier["id"], core.klant(customer.dossier_number)["id"])
    core.portal.update_customer(customer.portal_id, primaryEmail="nieuw@example.nl")

    result = (await handle(core, customer.dossier_number)).result.data

    assert (result.status, result.attempts) == ("succeeded", 2)
    assert result.dossierId == dossier["id"]
    klant = core.klant(customer.dossier_number)
    assert klant["achternaam"] == "Vries"
    assert [e["naam"] for e in klant["emailadressen"]] == ["nieuw@example.nl"]


async def test_a_portal_customer_id_of_someone_else_never_puts_their_data_in_the_dossier(
    core: Core,
) -> None:
    customer = core.seed(0)
    someone_else = core.seed(1)

    result = (
        await handle(core, customer.dossier_number, portalCustomerId=someone_else.portal_id)
    ).result.data

    assert result.status == "succeeded"
    klant = core.klant(customer.dossier_number)
    assert [e["naam"] for e in klant["emailadressen"]] == ["klant0@example.nl"]
    assert [p["naam"] for p in klant["telefoonnummers"]] == ["+31 6 10000000"]
    assert [a["straat"] for a in klant["adressen"]] == ["Hoofdstraat"]


async def test_a_customer_the_portal_adds_after_a_miss_is_synced_whole_by_the_next_event(
    core: Core,
) -> None:
    for other in range(1, 21):  # two pages of others before it, as in a real listing
        core.seed(other)
    customer = seed_in_anva(core.anva, 0)
    before = (await handle(core, customer.dossier_number)).result.data
    without_portal = core.dossier(customer.dossier_number)

    seed_in_portal(core.portal, 0)
    after = (await handle(core, customer.dossier_number)).result.data

    miss_ttl_s = core_settings(contracts=None, retry=FAST_RETRY).portal.miss_ttl_s
    assert miss_ttl_s == PortalSettings.model_fields["miss_ttl_s"].default
    assert before.status == "succeeded"
    assert without_portal["_embedded"].get("standaardcorrespondentieadres") is None, (
        "the first event missed the customer in the portal"
    )
    assert (after.status, after.servedBy) == ("succeeded", None)
    dossier = core.dossier(customer.dossier_number)
    klant = core.klant(customer.dossier_number)
    assert (klant["voornaam"], klant["achternaam"]) == ("Jan", "Vries")
    adres = dossier["_embedded"]["standaardcorrespondentieadres"]
    assert (adres["straat"], adres["nummer"], adres["toevoeging"]) == ("Hoofdstraat", "12", "A")
    assert (adres["postcode"], adres["plaatsnaam"]) == ("1000AB", "Amsterdam")
    assert "klant0@example.nl" in [e["naam"] for e in klant["emailadressen"]]
    assert [p["naam"] for p in klant["telefoonnummers"]] == ["+31 6 10000000"]
