"""contract.changed end to end."""

from __future__ import annotations

from typing import Any

import pytest

from app.sandbox import Sandbox
from app.simulators.seed import SampleCustomer, seed_customer
from tests.e2e.helpers import only_dossier, only_klant, sync

pytestmark = pytest.mark.e2e

CONTRACT_ID = "35255618453762"


def add_contract(sandbox: Sandbox, dossier_number: str, **changes: Any) -> None:
    sandbox.anva.add_contract(
        contract_id=CONTRACT_ID,
        dossier_number=dossier_number,
        format="ZPP NN",
        status=changes.get("status", "Lopend"),
        metadata={"omschrijving": "Aansprakelijkheid particulier", "startDate": "2026-01-01"},
    )


async def customer_with_contract(sandbox: Sandbox) -> SampleCustomer:
    """A sample customer that ANVA holds the contract for, and a running worker."""
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    add_contract(sandbox, customer.dossier_number)
    await sandbox.start_worker()
    return customer


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
    await contract_changed(sandbox, customer.dossier_number)
    await sandbox.results(1)
    await sandbox.stop_worker()

    await sandbox.start_worker()
    await contract_changed(sandbox, customer.dossier_number)
    _, again = await sandbox.results(2)

    assert again.data.status == "succeeded"
    assert again.data.operations == []
    assert len(only_dossier(sandbox, customer.dossier_number)["contracten"]) == 1


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
