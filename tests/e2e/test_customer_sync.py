"""customer.changed end to end: real broker, simulators on loopback, the production wiring."""

from __future__ import annotations

from typing import Any

import pytest

from app.sandbox.simulators.seed import sample_customer, seed_customer
from app.sandbox.world import CLOUDEVENTS_PRODUCER_HEADERS, Sandbox
from tests.conftest import SandboxFactory
from tests.e2e.helpers import only_dossier, only_klant, sync, synced_customer

pytestmark = pytest.mark.e2e

PARTICULIER = 0  # seed index of "Jan de Vries", Hoofdstraat 12-A


async def test_new_particulier_gets_one_dossier_with_person_address_email_and_phone(
    sandbox: Sandbox,
) -> None:
    customer = seed_customer(sandbox.anva, sandbox.portal, PARTICULIER)
    await sandbox.start_worker()

    event_id = await sync(sandbox, customer.dossier_number)
    (result,) = await sandbox.results(1)

    assert result.data.status == "succeeded"
    assert result.data.eventId == event_id
    assert result.subject == customer.dossier_number
    dossier = only_dossier(sandbox, customer.dossier_number)
    assert result.data.dossierId == dossier["id"]
    klant = only_klant(dossier)
    assert (klant["voornaam"], klant["tussenvoegsel"], klant["achternaam"]) == (
        "Jan",
        "de",
        "Vries",
    )
    assert klant["dossierrol"] == "Eerste persoon"
    adres = dossier["_embedded"]["standaardcorrespondentieadres"]
    assert (adres["straat"], adres["nummer"], adres["toevoeging"]) == ("Hoofdstraat", "12", "A")
    assert (adres["postcode"], adres["plaatsnaam"]) == ("1000AB", "Amsterdam")
    assert [e["naam"] for e in klant["emailadressen"]] == ["klant0@example.nl"]
    assert [p["naam"] for p in klant["telefoonnummers"]] == ["+31 6 10000000"]
    assert sorted((o.method, o.status) for o in result.data.operations) == [
        ("PATCH", 200),
        *[("POST", 201)] * 5,
    ]


async def test_duplicate_delivery_of_one_event_writes_once(sandbox: Sandbox) -> None:
    customer = seed_customer(sandbox.anva, sandbox.portal, PARTICULIER)
    await sandbox.start_worker()

    await sync(sandbox, customer.dossier_number, event_id="same-event")
    await sync(sandbox, customer.dossier_number, event_id="same-event")
    first, second = await sandbox.results(2)

    assert [first.data.status, second.data.status] == ["succeeded", "succeeded"]
    assert len(first.data.operations) == 6
    assert second.data.operations == []
    klant = only_klant(only_dossier(sandbox, customer.dossier_number))
    assert (
        len(klant["adressen"]) == len(klant["emailadressen"]) == len(klant["telefoonnummers"]) == 1
    )


async def test_unknown_dossier_number_fails_and_is_dead_lettered(sandbox: Sandbox) -> None:
    await sandbox.start_worker()

    event_id = await sync(sandbox, "999999")
    (result,) = await sandbox.results(1)
    (dead,) = await sandbox.read(sandbox.topics.dead_letter, 1)

    assert result.data.status == "failed"
    assert result.data.error is not None
    assert result.data.error.code == "customer_not_found"
    assert result.data.error.retryable is False
    headers = dict(dead.headers)
    assert headers["x-dead-letter-reason"] == b"customer_not_found"
    assert headers["x-event-id"] == event_id.encode()
    assert sandbox.elements.write_count() == 0


UNUSABLE = {
    "not_json": b"{not json",
    "not_object": b'["an", "array"]',
    "missing_attribute": b'{"id": "e1", "type": "customer.changed", "data": {"dossierNumber": "1"}}',
    "unknown_type": b'{"id": "e2", "type": "customer.deleted", "time": "2026-11-23T10:00:00Z", "data": {}}',
    "missing_dossier_number": (
        b'{"id": "e3", "type": "customer.changed", "time": "2026-11-23T10:00:00Z", "data": {}}'
    ),
}


async def test_each_kind_of_unusable_input_is_rejected_and_dead_lettered_as_sent(
    sandbox: Sandbox,
) -> None:
    await sandbox.start_worker()
    for name, raw in UNUSABLE.items():
        await sandbox.publish_raw(
            sandbox.topics.customer_events, name, raw, headers=CLOUDEVENTS_PRODUCER_HEADERS
        )

    results = {r.subject: r for r in await sandbox.results(len(UNUSABLE))}
    dead = {
        r.key.decode(): r for r in await sandbox.read(sandbox.topics.dead_letter, len(UNUSABLE))
    }

    expected_reason = {**{n: n for n in UNUSABLE}, "missing_dossier_number": "missing_attribute"}
    for name, raw in UNUSABLE.items():
        assert results[name].data.status == "rejected"
        assert results[name].data.error is not None
        assert results[name].data.error.code == expected_reason[name]
        assert dead[name].value == raw
        assert dict(dead[name].headers)["x-dead-letter-reason"] == expected_reason[name].encode()
    assert results["unknown_type"].data.eventId == "e2"
    assert results["not_json"].data.eventId is None
    assert sandbox.elements.requests == []


async def test_worker_keeps_consuming_after_bad_input(sandbox: Sandbox) -> None:
    customer = seed_customer(sandbox.anva, sandbox.portal, PARTICULIER)
    await sandbox.start_worker()

    await sandbox.publish_raw(
        sandbox.topics.customer_events,
        customer.dossier_number,
        b"\xff\xfe",
        headers=CLOUDEVENTS_PRODUCER_HEADERS,
    )
    await sync(sandbox, customer.dossier_number)
    bad, good = await sandbox.results(2)

    assert (bad.data.status, good.data.status) == ("rejected", "succeeded")


async def test_one_partition_still_syncs_keys_concurrently_and_each_key_in_order(
    make_sandbox: Any,
) -> None:
    sandbox: Sandbox = await make_sandbox(topic_partitions=1)
    customers = [seed_customer(sandbox.anva, sandbox.portal, i) for i in range(4)]
    await sandbox.start_worker()

    published: dict[str, list[str]] = {c.dossier_number: [] for c in customers}
    for _ in range(2):
        for customer in customers:
            published[customer.dossier_number].append(await sync(sandbox, customer.dossier_number))
    results = await sandbox.results(8)

    for dossier_number, event_ids in published.items():
        assert [r.data.eventId for r in results if r.subject == dossier_number] == event_ids
    creations = [
        req.path for req in sandbox.elements.requests if req.path.endswith("/klantdossiers")
    ]
    first_klant = next(
        i for i, req in enumerate(sandbox.elements.requests) if "/klanten/" in req.path
    )
    created_before_any_klant = [
        req for req in sandbox.elements.requests[:first_klant] if req.method == "POST"
    ]
    assert len(creations) >= len(customers)
    assert len(created_before_any_klant) > 1, "different keys were not synced side by side"


@pytest.mark.xdist_group("timing")
async def test_new_customers_never_exceed_the_rate_limit(make_sandbox: SandboxFactory) -> None:
    sandbox: Sandbox = await make_sandbox(rate_limit=5)
    customers = [seed_customer(sandbox.anva, sandbox.portal, i) for i in range(6)]
    await sandbox.start_worker()

    for customer in customers:
        await sync(sandbox, customer.dossier_number)
    results = await sandbox.results(6)

    assert all(r.data.status == "succeeded" for r in results)
    assert sandbox.elements.count_status(429) == 0
    assert sandbox.elements.max_in_rolling_window(1.0) <= 5


async def test_a_restarted_worker_does_not_redo_committed_events(sandbox: Sandbox) -> None:
    await synced_customer(sandbox, PARTICULIER)
    await sandbox.stop_worker()

    await sandbox.start_worker()
    await sync(sandbox, sample_customer(PARTICULIER).dossier_number)
    results = await sandbox.results(2)

    assert len(await sandbox.read(sandbox.topics.results, 2)) == 2
    assert [len(r.data.operations) for r in results] == [6, 0]
