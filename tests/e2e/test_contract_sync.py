"""contract.changed end to end."""

from __future__ import annotations

from typing import Any

import pytest

from app.clients.limiter import today_in_amsterdam
from app.sandbox.simulators.seed import SampleCustomer, seed_customer
from app.sandbox.world import Sandbox
from tests.e2e.helpers import only_dossier, only_klant, sync

pytestmark = pytest.mark.e2e

CONTRACT_ID = "35255618453762"
DATE_FIELDS = ("contractDatum", "contractDatumDefinitief", "startdatum", "startdatumDefinitief")


BUSINESS = 2  # the seed's first business: ANVA knows no person for it
DEFAULT_METADATA = {"omschrijving": "Aansprakelijkheid particulier", "startDate": "2026-01-01"}


def add_contract(
    sandbox: Sandbox,
    dossier_number: str,
    contract_id: str = CONTRACT_ID,
    metadata: dict[str, Any] | None = None,
) -> None:
    sandbox.anva.add_contract(
        contract_id=contract_id,
        dossier_number=dossier_number,
        format="ZPP NN",
        status="Lopend",
        metadata=DEFAULT_METADATA if metadata is None else metadata,
    )


def contract_posts(sandbox: Sandbox) -> list[Any]:
    """Every contract POST Elements received, whatever it answered."""
    return [
        r
        for r in sandbox.elements.requests
        if r.method == "POST" and r.path.endswith("/contracten")
    ]


async def customer_with_contract(sandbox: Sandbox) -> SampleCustomer:
    """A sample customer that ANVA holds the contract for, and a running worker."""
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    add_contract(sandbox, customer.dossier_number)
    await sandbox.start_worker()
    return customer


async def synced_business_with_a_person_and_two_contracts(sandbox: Sandbox) -> SampleCustomer:
    """A business customer synced by a running worker, a person in its ANVA account since,
    and two contracts in ANVA not synced yet."""
    business = seed_customer(sandbox.anva, sandbox.portal, BUSINESS)
    await sandbox.start_worker()
    await sync(sandbox, business.dossier_number)
    await sandbox.results(1)
    sandbox.anva.update_account(BUSINESS + 1, firstName="Piet", middleName="de", lastName="Groen")
    add_contract(sandbox, business.dossier_number)
    add_contract(sandbox, business.dossier_number, "K-2")
    return business


async def contract_changed(
    sandbox: Sandbox, dossier_number: str, contract_id: str = CONTRACT_ID
) -> str:
    return await sandbox.publish(
        "contract.changed",
        {"contractId": contract_id, "dossierNumber": dossier_number},
        key=dossier_number,
    )


async def test_contract_before_its_customer_creates_the_dossier_then_the_contract(
    sandbox: Sandbox,
) -> None:
    customer = await customer_with_contract(sandbox)

    await contract_changed(sandbox, customer.dossier_number)
    (result,) = await sandbox.results(1)

    assert result.data.status == "succeeded"
    dossier = only_dossier(sandbox, customer.dossier_number)
    klant = only_klant(dossier)
    (contract,) = dossier["contracten"]
    assert contract["contractnummer"] == CONTRACT_ID
    assert contract["eersteAanvrager"]["id"] == klant["id"]
    assert (
        contract["correspondentieadres"]["id"]
        == dossier["_embedded"]["standaardcorrespondentieadres"]["id"]
    )
    assert contract["status"]["id"] == 2
    paths = [o.path for o in result.data.operations]
    assert paths[0] == "/api/data/klantdossiers"
    assert paths[-2].endswith("/contracten")


async def test_the_same_contract_event_three_times_leaves_one_contract_and_writes_once(
    sandbox: Sandbox,
) -> None:
    customer = await customer_with_contract(sandbox)
    await sync(sandbox, customer.dossier_number)
    await sandbox.results(1)

    for _ in range(3):
        await contract_changed(sandbox, customer.dossier_number)
    _, *contract_results = await sandbox.results(4)

    assert [r.data.status for r in contract_results] == ["succeeded"] * 3
    assert [len(r.data.operations) for r in contract_results] == [2, 0, 0]
    assert len(only_dossier(sandbox, customer.dossier_number)["contracten"]) == 1


async def test_a_restarted_worker_finds_the_existing_contract_instead_of_adding_one(
    sandbox: Sandbox,
) -> None:
    customer = await customer_with_contract(sandbox)
    await sync(sandbox, customer.dossier_number)
    await contract_changed(sandbox, customer.dossier_number)
    await sandbox.results(2)
    await sandbox.stop_worker()

    await sandbox.start_worker()
    await contract_changed(sandbox, customer.dossier_number)
    *_, again = await sandbox.results(3)

    assert again.data.status == "succeeded"
    assert again.data.operations == []
    assert len(contract_posts(sandbox)) == 1
    (contract,) = only_dossier(sandbox, customer.dossier_number)["contracten"]
    assert len(contract["registraties"]) == 1


async def test_a_contract_post_applied_then_answered_502_leaves_one_contract_and_one_registratie(
    sandbox: Sandbox,
) -> None:
    customer = await customer_with_contract(sandbox)
    await sync(sandbox, customer.dossier_number)
    await sandbox.results(1)
    sandbox.elements.faults.apply_then_fail_next(1, status=502)

    await contract_changed(sandbox, customer.dossier_number)
    _, result = await sandbox.results(2)

    assert result.data.status == "succeeded"
    assert result.data.attempts == 2
    assert [r.status for r in contract_posts(sandbox)] == [502]
    (contract,) = only_dossier(sandbox, customer.dossier_number)["contracten"]
    (registratie,) = contract["registraties"]
    assert registratie["omschrijving"].startswith(f"Contract {CONTRACT_ID} overgenomen uit ANVA")
    assert [o.path.rsplit("/", 1)[-1] for o in result.data.operations] == ["registraties"]


async def test_a_changed_contract_is_recorded_as_a_registratie_on_it(sandbox: Sandbox) -> None:
    customer = await customer_with_contract(sandbox)
    await contract_changed(sandbox, customer.dossier_number)
    await sandbox.results(1)

    sandbox.anva.update_contract(CONTRACT_ID, status="Beeindigd")
    await contract_changed(sandbox, customer.dossier_number)
    _, changed = await sandbox.results(2)

    assert [o.path.rsplit("/", 1)[-1] for o in changed.data.operations] == ["registraties"]
    (contract,) = only_dossier(sandbox, customer.dossier_number)["contracten"]
    assert "status: Lopend → Beeindigd" in contract["registraties"][-1]["omschrijving"]


async def test_a_change_registratie_whose_answer_was_lost_is_not_added_twice(
    sandbox: Sandbox,
) -> None:
    customer = await customer_with_contract(sandbox)
    await contract_changed(sandbox, customer.dossier_number)
    await sandbox.results(1)
    sandbox.anva.update_contract(CONTRACT_ID, status="Beeindigd")
    sandbox.elements.faults.apply_then_fail_next(1, status=502)

    await contract_changed(sandbox, customer.dossier_number)
    _, changed = await sandbox.results(2)

    assert changed.data.status == "succeeded"
    assert changed.data.attempts == 2
    (contract,) = only_dossier(sandbox, customer.dossier_number)["contracten"]
    assert [r["omschrijving"].split(":")[0] for r in contract["registraties"]] == [
        f"Contract {CONTRACT_ID} overgenomen uit ANVA",
        f"Contract {CONTRACT_ID} gewijzigd in ANVA",
    ]


async def test_a_contract_anva_does_not_know_fails_and_is_dead_lettered(sandbox: Sandbox) -> None:
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    await sandbox.start_worker()

    await contract_changed(sandbox, customer.dossier_number, "NOPE")
    (result,) = await sandbox.results(1)
    (dead,) = await sandbox.read(sandbox.topics.dead_letter, 1)

    assert result.data.status == "failed"
    assert result.data.error is not None
    assert result.data.error.code == "contract_not_found"
    assert dict(dead.headers)["x-dead-letter-reason"] == b"contract_not_found"


async def test_a_zakelijk_dossier_names_a_medewerker_as_eerste_aanvrager_when_anva_knows_a_person(
    sandbox: Sandbox,
) -> None:
    business = await synced_business_with_a_person_and_two_contracts(sandbox)

    await contract_changed(sandbox, business.dossier_number)
    await contract_changed(sandbox, business.dossier_number, "K-2")
    _, first, second = await sandbox.results(3)

    assert (first.data.status, second.data.status) == ("succeeded", "succeeded")
    dossier = only_dossier(sandbox, business.dossier_number)
    (organisatie,) = dossier["klanten"]["zakelijk"]
    assert dossier["klanten"]["particulier"] == []
    (medewerker,) = organisatie["medewerkers"]
    assert (medewerker["voornaam"], medewerker["tussenvoegsel"], medewerker["achternaam"]) == (
        "Piet",
        "de",
        "Groen",
    )
    assert medewerker["functie"] == [{"id": 1}]
    for contract in dossier["contracten"]:
        assert contract["aanvragerZakelijk"] == {"id": organisatie["id"]}
        assert contract["eersteAanvrager"] == {"id": medewerker["id"]}
        assert "aanvragersParticulier" not in contract
    assert [o.path.rsplit("/", 1)[-1] for o in first.data.operations] == [
        "medewerkers",
        "contracten",
        "registraties",
    ]
    assert [o.path.rsplit("/", 1)[-1] for o in second.data.operations] == [
        "contracten",
        "registraties",
    ]


async def test_a_zakelijk_contract_without_a_known_person_fails_before_any_contract_write(
    sandbox: Sandbox,
) -> None:
    business = seed_customer(sandbox.anva, sandbox.portal, BUSINESS)
    add_contract(sandbox, business.dossier_number)
    await sandbox.start_worker()
    await sync(sandbox, business.dossier_number)
    await sandbox.results(1)

    await contract_changed(sandbox, business.dossier_number)
    _, result = await sandbox.results(2)
    (dead,) = await sandbox.read(sandbox.topics.dead_letter, 1)

    assert result.data.status == "failed"
    assert result.data.error is not None
    assert result.data.error.code == "contract_aanvrager_unknown"
    assert result.data.error.retryable is False
    assert result.data.error.message == (
        f"dossier {business.dossier_number}: its klant is an organisation and ANVA names no "
        "person (no lastName on the account) to be the contract's eersteAanvrager"
    )
    assert result.data.attempts == 1
    assert result.data.operations == []
    assert contract_posts(sandbox) == []
    assert not any(r.path.endswith("/medewerkers") for r in sandbox.elements.requests)
    assert dict(dead.headers)["x-dead-letter-reason"] == b"contract_aanvrager_unknown"


async def test_contract_dates_anva_gives_are_sent_as_final(sandbox: Sandbox) -> None:
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    metadata = {"omschrijving": "AVP", "contractDatum": "2025-12-15", "ingangsdatum": "2026-01-01"}
    add_contract(sandbox, customer.dossier_number, metadata=metadata)
    await sandbox.start_worker()

    await contract_changed(sandbox, customer.dossier_number)
    (result,) = await sandbox.results(1)

    assert result.data.status == "succeeded"
    (contract,) = only_dossier(sandbox, customer.dossier_number)["contracten"]
    assert {k: contract[k] for k in DATE_FIELDS} == {
        "contractDatum": "2025-12-15",
        "contractDatumDefinitief": True,
        "startdatum": "2026-01-01",
        "startdatumDefinitief": True,
    }


async def test_without_dates_from_anva_the_contract_dates_are_not_final(sandbox: Sandbox) -> None:
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    add_contract(sandbox, customer.dossier_number, metadata={"omschrijving": "AVP"})
    await sandbox.start_worker()
    before = today_in_amsterdam().isoformat()

    await contract_changed(sandbox, customer.dossier_number)
    (result,) = await sandbox.results(1)
    after = today_in_amsterdam().isoformat()

    assert result.data.status == "succeeded"
    (contract,) = only_dossier(sandbox, customer.dossier_number)["contracten"]
    assert contract["contractDatumDefinitief"] is False
    assert contract["startdatumDefinitief"] is False
    assert contract["contractDatum"] == contract["startdatum"]
    assert contract["startdatum"] in {before, after}
