"""What the worker remembers never outranks Elements (CONTRACT.md, "Identity is checked, never
assumed", TOPIC_STATE): end to end through the embedded broker and the simulators."""

from __future__ import annotations

import httpx
import pytest

from app.kafka.state import dossier_key
from app.sandbox.world import Sandbox
from tests.e2e.helpers import (
    ADRES_FORM,
    eventually,
    only_dossier,
    only_klant,
    standaard_adres,
    sync,
    synced_customer,
)
from tests.e2e.test_contract_sync import (
    contract_changed,
    synced_business_with_a_person_and_two_contracts,
)

pytestmark = pytest.mark.e2e


async def test_a_dossier_renumbered_by_hand_gets_no_write_of_the_customer_it_was(
    sandbox: Sandbox,
) -> None:
    customer = await synced_customer(sandbox)
    renumbered = only_dossier(sandbox, customer.dossier_number)["id"]
    sandbox.elements.renumber_dossier(renumbered, "9" + customer.dossier_number)
    sandbox.portal.update_customer(
        customer.portal_id, primaryEmail="nieuw@example.nl", phone="+31 6 55555555"
    )
    writes_before = len(sandbox.elements.writes_to(renumbered))

    await sync(sandbox, customer.dossier_number)
    _, result = await sandbox.results(2)

    assert result.data.status == "succeeded"
    assert sandbox.elements.writes_to(renumbered)[writes_before:] == []
    recreated = only_dossier(sandbox, customer.dossier_number)
    assert result.data.dossierId == recreated["id"] != renumbered
    assert [e["naam"] for e in only_klant(recreated)["emailadressen"]] == ["nieuw@example.nl"]


async def test_a_dossier_deleted_by_hand_is_never_written_to_remembered_or_found(
    sandbox: Sandbox,
) -> None:
    customer = await synced_customer(sandbox)
    deleted = only_dossier(sandbox, customer.dossier_number)["id"]
    sandbox.elements.delete_dossier(deleted)
    sandbox.portal.update_customer(customer.portal_id, primaryEmail="nieuw@example.nl")
    writes_before = len(sandbox.elements.writes_to(deleted))

    await sync(sandbox, customer.dossier_number)  # the worker remembers the dossier
    await sandbox.stop_worker()
    forgetful = sandbox.topics.model_copy(update={"state": "elements-sync-state-empty"})
    await sandbox.start_worker(topics=forgetful)
    await sync(sandbox, customer.dossier_number)  # found by the search
    _, remembered, found = await sandbox.results(3)

    for result in (remembered, found):
        assert result.data.status == "failed"
        assert result.data.error is not None
        assert (result.data.error.code, result.data.error.retryable) == (
            "klantdossier_deleted",
            False,
        )
    assert sandbox.elements.writes_to(deleted)[writes_before:] == []
    assert len(sandbox.elements.dossiers()) == 1


async def test_a_tombstone_on_the_state_topic_makes_the_running_worker_read_elements(
    sandbox: Sandbox,
) -> None:
    customer = await synced_customer(sandbox)
    dossier = only_dossier(sandbox, customer.dossier_number)
    sandbox.elements.unset_correspondentieadres(dossier["id"])  # a hand edit to heal

    await sandbox.publish_raw(sandbox.topics.state, dossier_key(customer.dossier_number), None)
    assert sandbox.runtime is not None
    memory = sandbox.runtime.pipeline.memory
    await eventually(lambda: memory.get(customer.dossier_number) is None)
    await sync(sandbox, customer.dossier_number)
    _, result = await sandbox.results(2)

    assert result.data.status == "succeeded"
    assert [op.method for op in result.data.operations] == ["PATCH"]
    assert standaard_adres(sandbox, customer.dossier_number) == ("Hoofdstraat", "12", "Amsterdam")


async def test_an_unreadable_record_at_start_counts_as_none(sandbox: Sandbox) -> None:
    customer = await synced_customer(sandbox)
    await sandbox.stop_worker()
    await sandbox.publish_raw(
        sandbox.topics.state, dossier_key(customer.dossier_number), b'{"dossier_number": ["x"'
    )
    dossier = only_dossier(sandbox, customer.dossier_number)
    sandbox.elements.unset_correspondentieadres(dossier["id"])

    await sandbox.start_worker()
    await sync(sandbox, customer.dossier_number)
    _, result = await sandbox.results(2)

    assert result.data.status == "succeeded"
    assert [op.method for op in result.data.operations] == ["PATCH"]
    assert len(sandbox.elements.dossiers()) == 1


async def test_a_form_whose_address_was_written_before_its_phone_was_refused_keeps_the_address(
    sandbox: Sandbox,
) -> None:
    customer = await synced_customer(sandbox)
    sandbox.elements.faults.refuse_next(
        1, path="naam", message="Telefoonnummer is ongeldig", collection="telefoonnummers"
    )
    async with httpx.AsyncClient(base_url=sandbox.urls["worker"]) as http:
        answer = await http.post(
            "/forms/submissions",
            headers=ADRES_FORM,
            json={
                "street": "Kerkweg",
                "houseNumber": "3",
                "postcode": "2000 CD",
                "city": "Delft",
                "phone": "+31 6 99999999",
            },
        )
    assert answer.status_code == 202
    _, refused = await sandbox.results(2)
    assert refused.data.status == "failed"
    writes_before = len(sandbox.elements.requests)

    await sync(sandbox, customer.dossier_number)
    *_, result = await sandbox.results(3)

    assert result.data.status == "succeeded"
    assert result.data.operations == []
    assert standaard_adres(sandbox, customer.dossier_number) == ("Kerkweg", "3", "Delft")
    assert [r for r in sandbox.elements.requests[writes_before:] if r.method != "GET"] == []


async def test_a_medewerker_created_before_its_contract_failed_is_not_created_again(
    sandbox: Sandbox,
) -> None:
    business = await synced_business_with_a_person_and_two_contracts(sandbox)
    sandbox.elements.faults.refuse_next(
        1, path="ingangsdatum", message="Kantoor is gesloten", collection="contracten"
    )

    await contract_changed(sandbox, business.dossier_number)
    _, failed = await sandbox.results(2)
    await sandbox.stop_worker()
    await sandbox.start_worker()
    await contract_changed(sandbox, business.dossier_number, "K-2")
    *_, succeeded = await sandbox.results(3)

    assert failed.data.status == "failed"
    assert succeeded.data.status == "succeeded"
    (organisatie,) = only_dossier(sandbox, business.dossier_number)["klanten"]["zakelijk"]
    (medewerker,) = organisatie["medewerkers"]
    (contract,) = only_dossier(sandbox, business.dossier_number)["contracten"]
    assert contract["eersteAanvrager"] == {"id": medewerker["id"]}
