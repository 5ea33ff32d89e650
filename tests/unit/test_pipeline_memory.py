"""The pipeline with the worker's memory (`app.state`) on the core without Kafka: what a
record spares, when it is not trusted, and what it keeps a form's change from."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from aiokafka.errors import KafkaTimeoutError

from app.events import CustomerChanged, FormSubmitted, input_event_bytes
from app.pipeline.customer import sync_customer
from app.pipeline.form import sync_form
from app.sandbox.core import FAST_RETRY, Core, running_core
from app.service import SyncService
from app.state.memory import DossierMemory
from app.state.record import RECORD_VERSION, DossierRecord, portal_locator
from app.ticket import Ticket


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
    customer = await core.synced_customer(0)
    saved = [
        (r.dossier_number, r.model_dump_json().encode()) for r in core.context.memory.records()
    ]
    restarted = DossierMemory(max_age_s=86_400)
    restarted.load(saved)
    core.context.memory = restarted
    seen = len(core.data_requests())

    again = await sync_customer(core.context, changed(customer.dossier_number))

    assert again.writes == ()
    assert core.data_requests()[seen:] == []


async def test_without_its_record_a_worker_reads_elements_and_duplicates_nothing(
    core: Core,
) -> None:
    customer = await core.synced_customer(0)
    core.context.memory = DossierMemory(max_age_s=86_400)
    seen = len(core.data_requests())

    again = await sync_customer(core.context, changed(customer.dossier_number))

    assert {r.method for r in core.data_requests()[seen:]} == {"GET"}, "read, nothing written"
    assert again.writes == ()
    klant = core.klant(customer.dossier_number)
    assert len(klant["adressen"]) == len(klant["emailadressen"]) == 1
    assert len(klant["telefoonnummers"]) == 1


async def test_a_record_older_than_the_max_age_reads_elements_and_heals_a_hand_edit() -> None:
    clock = Clock()
    async with running_core(memory=DossierMemory(max_age_s=3600, clock=clock)) as core:
        customer = await core.synced_customer(0)
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
    customer = await core.synced_customer(0)
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
    customer = await core.synced_customer(0)
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


async def test_an_upstream_email_change_reads_only_which_dossier_it_is_before_adding_it(
    core: Core,
) -> None:
    customer = await core.synced_customer(0)
    core.portal.update_customer(customer.portal_id, primaryEmail="nieuw@example.nl")
    seen = len(core.data_requests())

    synced = await sync_customer(core.context, changed(customer.dossier_number))

    dossier_id = str(core.dossier(customer.dossier_number)["id"])
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in core.data_requests()[seen:]] == [
        ("GET", dossier_id),
        ("POST", "emailadressen"),
    ]
    assert [e["naam"] for e in core.klant(customer.dossier_number)["emailadressen"]] == [
        "klant0@example.nl",
        "nieuw@example.nl",
    ]
    assert synced.writes[0].method == "POST"


def as_written(record: DossierRecord, **changes: object) -> bytes:
    return record.model_copy(update=changes).model_dump_json().encode()


async def test_a_record_read_from_the_topic_replaces_the_one_kept_only_when_newer(
    core: Core,
) -> None:
    customer = core.seed(0)
    number = customer.dossier_number
    await sync_customer(core.context, changed(number))
    memory = core.context.memory
    own = memory.get(number)
    assert own is not None and own.writer == memory.writer and own.revision >= 1

    memory.followed(number, as_written(own, read_at=1.0))
    assert memory.get(number) == own
    memory.followed(number, as_written(own, writer="late-replica", revision=own.revision - 1))
    assert memory.get(number) == own
    theirs = own.model_copy(
        update={"writer": "another-replica", "read_at": 0.0, "revision": own.revision + 1}
    )
    memory.followed(number, theirs.model_dump_json().encode())

    assert memory.get(number) == theirs
    assert memory.trusted(number) is None


async def test_a_tombstone_or_an_unreadable_value_on_the_topic_drops_the_record(
    core: Core,
) -> None:
    first, second = core.seed(0), core.seed(1)
    for customer in (first, second):
        await sync_customer(core.context, changed(customer.dossier_number))
    memory = core.context.memory

    memory.followed(first.dossier_number, None)
    memory.followed(second.dossier_number, b'{"dossier_number": 12')

    assert memory.get(first.dossier_number) is None
    assert memory.get(second.dossier_number) is None


async def test_a_record_of_an_unknown_version_or_read_in_the_future_counts_as_none() -> None:
    clock = Clock()
    memory = DossierMemory(max_age_s=86_400, clock=clock)
    record = DossierRecord(dossier_number="100", dossier_id=5526, read_at=clock.now)
    memory.load(
        [
            ("100", as_written(record, version=RECORD_VERSION + 1)),
            ("101", as_written(record, dossier_number="101", read_at=clock.now + 3600)),
            ("102", as_written(record, dossier_number="102")),
        ]
    )

    assert memory.get("100") is None
    assert memory.trusted("101") is None and memory.get("101") is None
    assert memory.trusted("102") is not None


async def test_a_404_under_a_remembered_id_is_forgotten_durably() -> None:
    saved: list[tuple[str, bytes]] = []

    async def save(dossier_number: str, value: bytes) -> None:
        saved.append((dossier_number, value))

    clock = Clock()
    memory = DossierMemory(max_age_s=86_400, clock=clock, save=save)
    memory.load(
        [("100", as_written(DossierRecord(dossier_number="100", dossier_id=1, read_at=clock.now)))]
    )

    await memory.forget("100", Ticket.outside_event())

    ((number, value),) = saved
    written = DossierRecord.model_validate_json(value)
    assert number == "100" and written.read_at == 0 and written.revision == 1
    assert memory.trusted("100") is None


async def test_an_event_waits_for_an_unwritable_state_topic_instead_of_failing() -> None:
    down = True
    waits = 0

    async def save(dossier_number: str, value: bytes) -> None:
        if down:
            raise KafkaTimeoutError()

    async def writable() -> None:
        nonlocal down, waits
        waits += 1
        down = False

    async with running_core(memory=DossierMemory(max_age_s=86_400)) as core:
        customer = await core.synced_customer(0)
        record = as_written(stored(core, customer.dossier_number))
        core.context.memory = DossierMemory(max_age_s=86_400, save=save)
        core.context.memory.load([(customer.dossier_number, record)])
        core.portal.update_customer(customer.portal_id, primaryEmail="nieuw@example.nl")
        service = SyncService(
            core.context, core.service._budget, retry=FAST_RETRY, state_writable=writable
        )

        outcome = await service.handle(
            input_event_bytes("customer.changed", {"dossierNumber": customer.dossier_number})
        )

    assert outcome.result.data.status == "succeeded"
    assert waits == 1
    assert [op.path.rsplit("/", 1)[-1] for op in outcome.result.data.operations] == [
        "emailadressen"
    ]


def stored(core: Core, dossier_number: str) -> DossierRecord:
    record = core.context.memory.get(dossier_number)
    assert record is not None
    return record


async def test_a_tombstone_beats_a_sync_already_in_flight(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's tombstone arrives while a sync of the dossier writes to Elements: the
    record that sync keeps afterwards is not trusted, so the next sync reads Elements."""
    customer = await core.synced_customer(0)
    core.portal.update_customer(customer.portal_id, phone="+31 6 55556666")
    memory = core.context.memory
    marked_unread = memory.before_writes

    async def tombstone_arrives_meanwhile(dossier_number: str, ticket: Ticket) -> None:
        await marked_unread(dossier_number, ticket)
        memory.followed(dossier_number, None)

    monkeypatch.setattr(memory, "before_writes", tombstone_arrives_meanwhile)

    added = await sync_customer(core.context, changed(customer.dossier_number))

    assert [w.path.rsplit("/", 1)[-1] for w in added.writes] == ["telefoonnummers"]
    kept = memory.get(customer.dossier_number)
    assert kept is not None
    assert memory.trusted(customer.dossier_number) is None


def as_the_previous_release_wrote(record: DossierRecord) -> bytes:
    """Version 1 of the record: no `contracts_complete`."""
    document = record.model_dump(mode="json", exclude={"contracts_complete"})
    return json.dumps({**document, "version": 1}).encode()


async def test_records_of_the_previous_release_are_kept_upgraded_and_still_spare_the_reads(
    core: Core,
) -> None:
    """A release that bumps the record's version would have forgotten every dossier at once:
    each next event of a hundred thousand dossiers paying the full reads again."""
    customer = await core.synced_customer(0)
    number = customer.dossier_number
    written = core.context.memory.get(number)
    assert written is not None and written.portal is not None
    upgraded_memory = DossierMemory(max_age_s=86_400)
    upgraded_memory.load([(number, as_the_previous_release_wrote(written))])
    core.context.memory = upgraded_memory
    seen = len(core.data_requests())

    again = await sync_customer(core.context, changed(number))

    record = upgraded_memory.trusted(number)
    assert record is not None
    assert (record.version, record.contracts_complete) == (RECORD_VERSION, False)
    assert record.klant == written.klant
    assert portal_locator(as_the_previous_release_wrote(written)) == written.portal
    assert again.writes == ()
    assert core.data_requests()[seen:] == []
