"""contract.changed end to end: what needs a worker restarted over the same broker.

What the pipeline decides about a contract is proven on the core without Kafka
(`tests/unit/test_pipeline_contract.py`)."""

from __future__ import annotations

from typing import Any

import pytest

from app.sandbox.simulators.seed import SampleCustomer, seed_customer
from app.sandbox.world import Sandbox
from tests.e2e.helpers import only_dossier, sync

pytestmark = pytest.mark.e2e

CONTRACT_ID = "35255618453762"


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
    sandbox.anva.add_contract(
        contract_id=CONTRACT_ID,
        dossier_number=customer.dossier_number,
        format="ZPP NN",
        status="Lopend",
        metadata={"omschrijving": "Aansprakelijkheid particulier", "startDate": "2026-01-01"},
    )
    await sandbox.start_worker()
    return customer


async def contract_changed(sandbox: Sandbox, dossier_number: str) -> str:
    return await sandbox.publish(
        "contract.changed",
        {"contractId": CONTRACT_ID, "dossierNumber": dossier_number},
        key=dossier_number,
    )


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
