"""contract.changed's entry point on the core without Kafka: what Elements receives and holds."""

from __future__ import annotations

import pytest

from app.errors import UpstreamRejected, UpstreamUnavailable
from app.events import CustomerChanged
from app.pipeline.contract import sync_contract
from app.pipeline.customer import sync_customer
from app.sandbox.core import Core
from app.state.memory import DossierMemory

CONTRACT_ID = "35255618453762"
BUSINESS = 2  # the seed's first business: ANVA knows no person for it


def last_parts(paths: list[str]) -> list[str]:
    return [path.rsplit("/", 1)[-1] for path in paths]


async def test_a_contract_before_its_customer_creates_the_dossier_then_the_contract_and_registratie(
    core: Core,
) -> None:
    customer = core.seed(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)

    synced = await sync_contract(core.context, event)

    dossier = core.dossier(customer.dossier_number)
    (klant,) = dossier["klanten"]["particulier"]
    (contract,) = dossier["contracten"]
    (registratie,) = contract["registraties"]
    assert synced.dossier_id == dossier["id"]
    assert contract["contractnummer"] == CONTRACT_ID
    assert contract["omschrijving"] == f"Aansprakelijkheid particulier [ANVA {CONTRACT_ID}]"
    assert contract["aanvragersParticulier"] == [{"id": klant["id"]}]
    assert contract["eersteAanvrager"] == {"id": klant["id"]}
    assert registratie["omschrijving"].startswith(f"Contract {CONTRACT_ID} overgenomen uit ANVA")
    assert last_parts([w.path for w in synced.writes]) == [
        "klantdossiers",
        "particulier",
        "adressen",
        str(dossier["id"]),
        "emailadressen",
        "telefoonnummers",
        "contracten",
        "registraties",
    ]
    assert synced.writes[-2].resourceId == contract["id"]


async def test_a_changed_contract_synced_again_adds_a_gewijzigd_registratie_and_nothing_else(
    core: Core,
) -> None:
    customer = core.seed(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)
    await sync_contract(core.context, event)
    core.anva.update_contract(CONTRACT_ID, status="Beeindigd")
    seen = len(core.writes())

    synced = await sync_contract(core.context, event)

    (contract,) = core.dossier(customer.dossier_number)["contracten"]
    assert [r["omschrijving"] for r in contract["registraties"]][1:] == [
        f"Contract {CONTRACT_ID} gewijzigd in ANVA: status: Lopend → Beeindigd"
    ]
    assert [(r.method, r.path) for r in core.writes()[seen:]] == [
        (w.method, w.path) for w in synced.writes
    ]
    assert last_parts([w.path for w in synced.writes]) == ["registraties"]


async def test_an_unchanged_contract_synced_again_writes_nothing(core: Core) -> None:
    customer = core.seed(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)
    first = await sync_contract(core.context, event)
    seen = len(core.data_requests())

    again = await sync_contract(core.context, event)

    assert (again.dossier_id, again.writes) == (first.dossier_id, ())
    assert core.data_requests()[seen:] == []


async def test_a_zakelijk_klant_applies_through_a_medewerker_created_once(core: Core) -> None:
    business = core.seed(BUSINESS)
    await sync_customer(core.context, CustomerChanged(dossierNumber=business.dossier_number))
    core.anva.update_account(BUSINESS + 1, firstName="Piet", middleName="de", lastName="Groen")

    first = await sync_contract(
        core.context, core.new_contract(business.dossier_number, CONTRACT_ID)
    )
    second = await sync_contract(core.context, core.new_contract(business.dossier_number, "K-2"))

    dossier = core.dossier(business.dossier_number)
    (organisatie,) = dossier["klanten"]["zakelijk"]
    (medewerker,) = organisatie["medewerkers"]
    assert (medewerker["voornaam"], medewerker["achternaam"]) == ("Piet", "Groen")
    for contract in dossier["contracten"]:
        assert contract["aanvragerZakelijk"] == {"id": organisatie["id"]}
        assert contract["eersteAanvrager"] == {"id": medewerker["id"]}
    assert last_parts([w.path for w in first.writes]) == [
        "medewerkers",
        "contracten",
        "registraties",
    ]
    assert last_parts([w.path for w in second.writes]) == ["contracten", "registraties"]
    record = core.context.memory.get(business.dossier_number)
    assert record is not None and record.medewerker_id == medewerker["id"]


async def test_a_failure_after_the_contract_is_created_carries_every_write_made_before_it(
    core: Core,
) -> None:
    customer = core.seed(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)
    core.fail_write(8, 503)  # six customer writes, the contract, then its registratie

    with pytest.raises(UpstreamUnavailable) as raised:
        await sync_contract(core.context, event)
    again = await sync_contract(core.context, event)

    assert last_parts([w.path for w in raised.value.writes])[-2:] == [
        "telefoonnummers",
        "contracten",
    ]
    assert len(raised.value.writes) == 7
    (contract,) = core.dossier(customer.dossier_number)["contracten"]
    (registratie,) = contract["registraties"]
    assert registratie["omschrijving"].startswith(f"Contract {CONTRACT_ID} overgenomen uit ANVA")
    assert last_parts([w.path for w in again.writes]) == ["registraties"]


async def test_a_medewerker_created_before_its_contract_failed_is_not_created_again(
    core: Core,
) -> None:
    business = core.seed(BUSINESS)
    await sync_customer(core.context, CustomerChanged(dossierNumber=business.dossier_number))
    core.anva.update_account(BUSINESS + 1, firstName="Piet", middleName="de", lastName="Groen")
    core.fail_write(2, 400)  # the medewerker, then the contract

    with pytest.raises(UpstreamRejected):
        await sync_contract(core.context, core.new_contract(business.dossier_number, CONTRACT_ID))
    restarted = DossierMemory(max_age_s=86_400)
    restarted.load(
        (r.dossier_number, r.model_dump_json().encode()) for r in core.context.memory.records()
    )
    core.context.memory = restarted
    again = await sync_contract(core.context, core.new_contract(business.dossier_number, "K-2"))

    (organisatie,) = core.dossier(business.dossier_number)["klanten"]["zakelijk"]
    (medewerker,) = organisatie["medewerkers"]
    assert last_parts([w.path for w in again.writes]) == ["contracten", "registraties"]
    (contract,) = core.dossier(business.dossier_number)["contracten"]
    assert contract["eersteAanvrager"] == {"id": medewerker["id"]}
