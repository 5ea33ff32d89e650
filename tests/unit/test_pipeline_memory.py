"""The pipeline with the worker's memory (`app.state`) on the core without Kafka: what a
record spares, when it is not trusted, and what it keeps a form's change from."""

from __future__ import annotations

from dataclasses import dataclass

from app.events import CustomerChanged, FormSubmitted
from app.pipeline.customer import sync_customer
from app.pipeline.form import sync_form
from app.state.memory import DossierMemory
from app.state.record import DossierRecord
from tests.unit.core import Core, running_core


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def changed(dossier_number: str) -> CustomerChanged:
    return CustomerChanged(dossierNumber=dossier_number)


async def test_a_restarted_worker_with_the_records_syncs_an_unchanged_customer_without_a_request(
    core: Core,
) -> None:
    customer = core.seed(0)
    await sync_customer(core.context, changed(customer.dossier_number))
    saved = [
        DossierRecord.model_validate_json(r.model_dump_json())
        for r in core.context.memory.records()
    ]
    restarted = DossierMemory(max_age_s=86_400)
    restarted.load(saved)
    core.context.memory = restarted
    seen = len(core.data_requests())

    again = await sync_customer(core.context, changed(customer.dossier_number))

    assert again.writes == ()
    assert core.data_requests()[seen:] == []


async def test_a_record_older_than_the_max_age_reads_elements_and_heals_a_hand_edit() -> None:
    clock = Clock()
    async with running_core(memory=DossierMemory(max_age_s=3600, clock=clock)) as core:
        customer = core.seed(0)
        await sync_customer(core.context, changed(customer.dossier_number))
        dossier = core.dossier(customer.dossier_number)
        core.elements.unset_correspondentieadres(dossier["id"])
        clock.now += 3601
        seen = len(core.data_requests())

        healed = await sync_customer(core.context, changed(customer.dossier_number))

        reads = [r for r in core.data_requests()[seen:] if r.method == "GET"]
        assert reads, "a record older than the max age is not trusted"
        assert [w.path.rsplit("/", 1)[-1] for w in healed.writes] == [str(dossier["id"])]
        assert core.dossier(customer.dossier_number)["_embedded"]["standaardcorrespondentieadres"]


async def test_a_form_change_stands_while_the_portal_keeps_its_address(core: Core) -> None:
    customer = core.seed(0)
    await sync_customer(core.context, changed(customer.dossier_number))
    await sync_form(
        core.context,
        FormSubmitted(
            customerId=customer.portal_id,
            formId="frm_contact",
            fields={
                "street": "Kerkweg",
                "houseNumber": "3",
                "postcode": "2000 CD",
                "city": "Delft",
            },
        ),
    )

    again = await sync_customer(core.context, changed(customer.dossier_number))

    standaard = core.dossier(customer.dossier_number)["_embedded"]["standaardcorrespondentieadres"]
    assert again.writes == ()
    assert (standaard["straat"], standaard["nummer"], standaard["plaatsnaam"]) == (
        "Kerkweg",
        "3",
        "Delft",
    )


async def test_a_portal_address_change_after_a_form_is_synced(core: Core) -> None:
    customer = core.seed(0)
    await sync_customer(core.context, changed(customer.dossier_number))
    await sync_form(
        core.context,
        FormSubmitted(
            customerId=customer.portal_id,
            formId="frm_contact",
            fields={"street": "Kerkweg", "houseNumber": "3", "city": "Delft"},
        ),
    )
    core.portal.update_customer(
        customer.portal_id, address="Molenlaan 8", zipCode="3000 EF", city="Rotterdam"
    )

    moved = await sync_customer(core.context, changed(customer.dossier_number))

    standaard = core.dossier(customer.dossier_number)["_embedded"]["standaardcorrespondentieadres"]
    assert [w.path.rsplit("/", 1)[-1] for w in moved.writes] == [
        "adressen",
        str(moved.dossier_id),
    ]
    assert (standaard["straat"], standaard["nummer"], standaard["plaatsnaam"]) == (
        "Molenlaan",
        "8",
        "Rotterdam",
    )


async def test_an_upstream_email_change_is_added_without_reading_elements(core: Core) -> None:
    customer = core.seed(0)
    await sync_customer(core.context, changed(customer.dossier_number))
    core.portal.update_customer(customer.portal_id, primaryEmail="nieuw@example.nl")
    seen = len(core.data_requests())

    synced = await sync_customer(core.context, changed(customer.dossier_number))

    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in core.data_requests()[seen:]] == [
        ("POST", "emailadressen")
    ]
    assert [e["naam"] for e in core.klant(customer.dossier_number)["emailadressen"]] == [
        "klant0@example.nl",
        "nieuw@example.nl",
    ]
    assert synced.writes[0].method == "POST"


async def test_a_record_another_replica_wrote_replaces_the_one_kept_but_not_ones_own(
    core: Core,
) -> None:
    customer = core.seed(0)
    await sync_customer(core.context, changed(customer.dossier_number))
    memory = core.context.memory
    own = memory.get(customer.dossier_number)
    assert own is not None and own.writer == memory.writer

    memory.written_elsewhere(own.model_copy(update={"read_at": 1.0}))
    assert memory.get(customer.dossier_number) == own
    theirs = own.model_copy(update={"writer": "another-replica", "read_at": 0.0})
    memory.written_elsewhere(theirs)

    assert memory.get(customer.dossier_number) == theirs
    assert memory.trusted(customer.dossier_number) is None
