"""Identity is checked, never assumed (docs/reference/events.md): the record may spare reading what a
dossier holds, never which dossier it is; deleted dossiers are never written to."""

from __future__ import annotations

import pytest

from app.events import CustomerChanged, FormSubmitted
from app.pipeline.contract import sync_contract
from app.pipeline.customer import sync_customer
from app.pipeline.form import sync_form
from app.sandbox.core import Core

CONTRACT_ID = "35255618453762"


def changed(dossier_number: str) -> CustomerChanged:
    return CustomerChanged(dossierNumber=dossier_number)


async def duplicate_dossier(core: Core, dossier_number: str) -> int:
    """A second klantdossier with the same relatienummer, as a person once made one: the API
    takes it (nothing in the spec makes a relatienummer unique). Its id is the higher one,
    so the worker keeps using the first."""
    created = await core.context.elements.create_dossier(
        {
            "omschrijving": "Duplicaat",
            "relatienummer": dossier_number,
            "dossierstatus": {"id": 1},
            "kantoor": {"id": 1},
        }
    )
    return created.resourceId


def holder_of(core: Core, contract_id: str) -> int:
    """The one klantdossier holding the contract."""
    (holder,) = [
        d["id"]
        for d in core.elements.dossiers()
        if any(c["contractnummer"] == contract_id for c in d["contracten"])
    ]
    return holder


async def test_a_dossier_renumbered_by_hand_gets_nothing_of_the_customer_it_was(
    core: Core,
) -> None:
    customer = await core.synced_customer(0)
    renumbered = core.dossier(customer.dossier_number)["id"]
    core.elements.renumber_dossier(renumbered, "9" + customer.dossier_number)
    core.portal.update_customer(customer.portal_id, primaryEmail="nieuw@example.nl")
    writes_before = len(core.elements.writes_to(renumbered))

    synced = await sync_customer(core.context, changed(customer.dossier_number))

    assert core.elements.writes_to(renumbered)[writes_before:] == []
    recreated = core.dossier(customer.dossier_number)
    assert synced.dossier_id == recreated["id"] != renumbered
    assert [e["naam"] for e in core.klant(customer.dossier_number)["emailadressen"]] == [
        "nieuw@example.nl"
    ]
    record = core.context.memory.get(customer.dossier_number)
    assert record is not None and record.dossier_id == recreated["id"]


@pytest.mark.parametrize("remembered", [True, False], ids=["remembered", "found-by-search"])
async def test_a_dossier_deleted_by_hand_is_never_written_to_remembered_or_found(
    core: Core, remembered: bool
) -> None:
    customer = await core.synced_customer(0)
    core.elements.delete_dossier(core.dossier(customer.dossier_number)["id"])
    core.portal.update_customer(customer.portal_id, primaryEmail="nieuw@example.nl")
    if not remembered:
        core.context.memory.load([])
        await core.context.memory.forget(customer.dossier_number, core.context.event)
    writes_before = len(core.writes())

    outcome = await core.handle("customer.changed", {"dossierNumber": customer.dossier_number})

    result = outcome.result.data
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == ("klantdossier_deleted", False)
    assert outcome.dead_letter_reason == "klantdossier_deleted"
    assert core.writes()[writes_before:] == []
    assert len(core.elements.dossiers()) == 1


async def test_an_unchanged_customer_with_a_trusted_record_costs_no_identity_read(
    core: Core,
) -> None:
    customer = await core.synced_customer(0)
    seen = len(core.data_requests())

    synced = await sync_customer(core.context, changed(customer.dossier_number))

    assert synced.writes == ()
    assert core.data_requests()[seen:] == []


async def test_a_form_whose_address_was_written_before_its_phone_was_refused_keeps_the_address(
    core: Core,
) -> None:
    customer = await core.synced_customer(0)
    core.fail_write(3, 400)  # adres, standaard PATCH, then the phone

    with pytest.raises(Exception, match="400"):
        await sync_form(
            core.context,
            FormSubmitted(
                customerId=customer.portal_id,
                formId="frm_adres",
                fields={
                    "street": "Kerkweg",
                    "houseNumber": "3",
                    "postcode": "2000 CD",
                    "city": "Delft",
                    "phone": "+31 6 99999999",
                },
            ),
        )
    seen = len(core.writes())
    again = await sync_customer(core.context, changed(customer.dossier_number))

    standaard = core.dossier(customer.dossier_number)["_embedded"]["standaardcorrespondentieadres"]
    assert (standaard["straat"], standaard["nummer"], standaard["plaatsnaam"]) == (
        "Kerkweg",
        "3",
        "Delft",
    )
    assert again.writes == ()
    assert core.writes()[seen:] == []


@pytest.mark.parametrize("remembered", [True, False], ids=["remembered", "found-by-search"])
async def test_a_contract_whose_dossier_was_deleted_goes_to_the_live_dossier_of_its_number(
    core: Core, remembered: bool
) -> None:
    customer = await core.synced_customer(0)
    number = customer.dossier_number
    live = await duplicate_dossier(core, number)
    event = core.new_contract(number, CONTRACT_ID)
    await sync_contract(core.context, event)
    deleted = holder_of(core, CONTRACT_ID)
    assert deleted != live
    core.elements.delete_dossier(deleted)
    core.anva.update_contract(CONTRACT_ID, status="Beeindigd")
    if not remembered:
        await core.context.memory.forget(number, core.context.event)
    writes_before = len(core.elements.writes_to(deleted))

    outcome = await core.handle("contract.changed", event.model_dump())

    result = outcome.result.data
    assert (result.status, result.dossierId) == ("succeeded", live)
    assert core.elements.writes_to(deleted)[writes_before:] == []
    (dossier,) = [d for d in core.elements.dossiers() if d["id"] == live]
    (contract,) = dossier["contracten"]
    (registratie,) = contract["registraties"]
    assert contract["contractnummer"] == CONTRACT_ID
    assert registratie["omschrijving"].startswith(f"Contract {CONTRACT_ID} overgenomen uit ANVA")
    record = core.context.memory.get(number)
    assert record is not None and record.dossier_id == live
    assert record.contracts[CONTRACT_ID].dossier_id == live


@pytest.mark.parametrize("remembered", [True, False], ids=["remembered", "found-by-search"])
async def test_a_contract_whose_only_dossier_was_deleted_fails_as_the_customer_would(
    core: Core, remembered: bool
) -> None:
    customer = await core.synced_customer(0)
    number = customer.dossier_number
    event = core.new_contract(number, CONTRACT_ID)
    await sync_contract(core.context, event)
    core.elements.delete_dossier(core.dossier(number)["id"])
    core.anva.update_contract(CONTRACT_ID, status="Beeindigd")
    if not remembered:
        await core.context.memory.forget(number, core.context.event)
    writes_before = len(core.writes())

    outcome = await core.handle("contract.changed", event.model_dump())

    result = outcome.result.data
    assert result.error is not None
    assert (result.status, result.error.code) == ("failed", "klantdossier_deleted")
    assert core.writes()[writes_before:] == []
