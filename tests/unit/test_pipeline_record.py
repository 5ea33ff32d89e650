"""What a record calls synced from upstream is what Elements holds (issue: a portal move lost
after a form, a form undone after an outage), on the core without Kafka."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import UpstreamUnavailable
from app.events import CustomerChanged, FormSubmitted
from app.pipeline.customer import sync_customer
from app.pipeline.form import sync_form
from app.sandbox.core import Core, LostAnswer
from app.state.memory import DossierMemory

FORM_ADDRESS = {"street": "Kerkweg", "houseNumber": "3", "postcode": "2000 CD", "city": "Delft"}


def form(portal_id: str, **fields: Any) -> FormSubmitted:
    return FormSubmitted(customerId=portal_id, formId="frm_contact", fields=fields)


def standaard(core: Core, dossier_number: str) -> tuple[str, str, str]:
    adres = core.dossier(dossier_number)["_embedded"]["standaardcorrespondentieadres"]
    return adres["straat"], adres["nummer"], adres["plaatsnaam"]


def forget_by_tombstone(core: Core, dossier_number: str) -> None:
    core.context.memory.followed(dossier_number, None)


def start_without_records(core: Core, dossier_number: str) -> None:
    """A worker going live on dossiers that were in Elements before it."""
    core.context.memory = DossierMemory(max_age_s=86_400)


@pytest.mark.parametrize(
    "no_record", [start_without_records, forget_by_tombstone], ids=["go-live", "tombstone"]
)
async def test_a_portal_move_is_synced_after_a_phone_only_form_when_no_record_was_kept(
    core: Core, no_record: Any
) -> None:
    customer = await core.synced_customer(0)
    no_record(core, customer.dossier_number)
    core.portal.update_customer(
        customer.portal_id, address="Molenlaan 8", zipCode="3000 EF", city="Rotterdam"
    )
    await sync_form(core.context, form(customer.portal_id, phone="+31 6 11112222"))

    moved = await sync_customer(
        core.context, CustomerChanged(dossierNumber=customer.dossier_number)
    )

    assert standaard(core, customer.dossier_number) == ("Molenlaan", "8", "Rotterdam")
    assert [w.path.rsplit("/", 1)[-1] for w in moved.writes] == [
        "adressen",
        str(moved.dossier_id),
    ]


async def test_a_form_address_written_before_its_phone_failed_with_500_stands(
    core: Core,
) -> None:
    customer = await core.synced_customer(0)
    core.fail_write(3, 500)  # adres, standaard PATCH, then the phone

    with pytest.raises(UpstreamUnavailable):
        await sync_form(
            core.context, form(customer.portal_id, phone="+31 6 99999999", **FORM_ADDRESS)
        )
    seen = len(core.writes())
    again = await sync_customer(
        core.context, CustomerChanged(dossierNumber=customer.dossier_number)
    )

    assert standaard(core, customer.dossier_number) == ("Kerkweg", "3", "Delft")
    assert again.writes == ()
    assert core.writes()[seen:] == []


async def test_a_phone_whose_answer_was_lost_is_read_again_not_added_twice(core: Core) -> None:
    customer = await core.synced_customer(0)
    submitted = form(customer.portal_id, phone="+31 6 99999999", **FORM_ADDRESS)
    core.fail_write(3, LostAnswer(502))  # adres, standaard PATCH, then the phone

    with pytest.raises(UpstreamUnavailable):
        await sync_form(core.context, submitted)
    await sync_form(core.context, submitted)

    phones = [p["naam"] for p in core.klant(customer.dossier_number)["telefoonnummers"]]
    assert phones.count("+31 6 99999999") == 1
