"""`python -m app redrive`: dead letters back to their topics, each once, through the real broker."""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.commands.redrive import redrive
from app.kafka.connection import client_options
from app.sandbox.simulators.seed import sample_customer, seed_customer
from app.sandbox.worker_process import worker_environment
from app.sandbox.world import Sandbox
from tests.e2e.helpers import only_dossier, only_klant, run_app, sync

pytestmark = pytest.mark.e2e


async def redrive_process(sandbox: Sandbox, *args: str) -> tuple[int, str]:
    """`python -m app redrive` with the environment a production deployment would give it."""
    ran = await run_app(worker_environment(sandbox.settings()), "redrive", *args)
    assert not ran.err.strip(), ran.err
    return ran.code, ran.out


async def waiting_keys(sandbox: Sandbox) -> list[str]:
    """The keys `python -m app dead-letters --json` lists."""
    ran = await run_app(worker_environment(sandbox.settings()), "dead-letters", "--json")
    assert (ran.code, ran.err) == (0, "")
    *letters, count = [json.loads(line) for line in ran.out.splitlines()]
    assert count == {"count": len(letters)}
    return sorted(letter["key"] for letter in letters)


async def published(sandbox: Sandbox, topic: str) -> int:
    """How many messages `topic` holds."""
    async with sandbox.reader(topic) as consumer:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        end = await consumer.end_offsets(partitions)
    return sum(end.values())


async def test_a_failed_event_redriven_after_its_customer_appears_succeeds_and_only_once(
    sandbox: Sandbox,
) -> None:
    customer = sample_customer(0)
    await sandbox.start_worker()
    event_id = await sync(sandbox, customer.dossier_number)
    (failed,) = await sandbox.results(1)
    assert (failed.data.status, failed.data.error and failed.data.error.code) == (
        "failed",
        "customer_not_found",
    )
    (letter,) = await sandbox.read(sandbox.topics.dead_letter, 1)
    seed_customer(sandbox.anva, sandbox.portal, 0)

    tally = await redrive(sandbox.settings())

    assert dict(tally.redriven) == {"customer_not_found": 1}
    _failed_again, second = await sandbox.results(2)
    assert (second.data.eventId, second.data.status) == (event_id, "succeeded")
    assert second.data.operations, "the redriven event made the dossier"
    only_dossier(sandbox, customer.dossier_number)
    (redriven,) = [
        r
        for r in await sandbox.read(sandbox.topics.customer_events, 2)
        if dict(r.headers).get("x-redriven-from")
    ]
    assert redriven.key == customer.dossier_number.encode()
    headers = dict(redriven.headers)
    assert (
        headers["x-redriven-from"] == f"{letter.topic}/{letter.partition}/{letter.offset}".encode()
    )
    assert not [k for k in headers if k.startswith(("x-dead-letter-", "x-original-"))]
    assert headers["traceparent"], "the original's own headers travel again"

    code, output = await redrive_process(sandbox)

    assert (code, output) == (0, "redriven: 0\n")
    with pytest.raises(TimeoutError):
        await sandbox.results(3, timeout_s=2.0)


async def test_a_redrive_by_reason_leaves_the_others_to_the_next_run_and_repeats_nothing(
    sandbox: Sandbox,
) -> None:
    await sandbox.start_worker()
    await sync(sandbox, sample_customer(0).dossier_number)
    await sandbox.publish_raw(sandbox.topics.customer_events, "garbage", b"not json")
    await sandbox.read(sandbox.topics.dead_letter, 2)
    seed_customer(sandbox.anva, sandbox.portal, 0)

    code, output = await redrive_process(sandbox, "--reason", "customer_not_found")
    assert (code, output) == (0, "customer_not_found: 1\nredriven: 1\n")
    await sandbox.results(3)

    code, output = await redrive_process(sandbox)
    assert (code, output) == (0, "not_json: 1\nredriven: 1\n")


async def test_a_redriven_customer_not_found_gives_the_whole_customer_added_since(
    sandbox: Sandbox,
) -> None:
    """The failed event's lookup missed the customer in the portal too; that remembered
    miss (default PORTAL_MISS_TTL_S) must not hide the portal customer added since."""
    customer = sample_customer(0)
    await sandbox.start_worker()
    event_id = await sync(sandbox, customer.dossier_number)
    (failed,) = await sandbox.results(1)
    await sandbox.read(sandbox.topics.dead_letter, 1)
    seed_customer(sandbox.anva, sandbox.portal, 0)

    await redrive(sandbox.settings())
    _, redriven = await sandbox.results(2)

    assert failed.data.error is not None and failed.data.error.code == "customer_not_found"
    assert (redriven.data.eventId, redriven.data.status) == (event_id, "succeeded")
    dossier = only_dossier(sandbox, customer.dossier_number)
    klant = only_klant(dossier)
    assert (klant["voornaam"], klant["achternaam"]) == ("Jan", "Vries")
    adres = dossier["_embedded"]["standaardcorrespondentieadres"]
    assert (adres["straat"], adres["nummer"], adres["plaatsnaam"]) == (
        "Hoofdstraat",
        "12",
        "Amsterdam",
    )
    assert [e["naam"] for e in klant["emailadressen"]] == ["klant0@example.nl"]
    assert [p["naam"] for p in klant["telefoonnummers"]] == ["+31 6 10000000"]


async def test_a_redrive_by_key_leaves_other_keys_listed_for_the_next_run_and_repeats_nothing(
    sandbox: Sandbox,
) -> None:
    first, second = sample_customer(0).dossier_number, sample_customer(1).dossier_number
    await sandbox.start_worker()
    await sync(sandbox, first)
    await sync(sandbox, second)
    await sandbox.read(sandbox.topics.dead_letter, 2)
    seed_customer(sandbox.anva, sandbox.portal, 0)
    seed_customer(sandbox.anva, sandbox.portal, 1)

    assert await redrive_process(sandbox, "--key", first) == (
        0,
        "customer_not_found: 1\nredriven: 1\n",
    )

    assert await waiting_keys(sandbox) == [second]
    # Results of the two keys may sit on different partitions: read as a set, not in order.
    succeeded = {r.subject for r in await sandbox.results(3) if r.data.status == "succeeded"}
    assert succeeded == {first}

    assert await redrive_process(sandbox) == (0, "customer_not_found: 1\nredriven: 1\n")

    succeeded = {r.subject for r in await sandbox.results(4) if r.data.status == "succeeded"}
    assert succeeded == {first, second}
    assert await waiting_keys(sandbox) == []
    assert await redrive_process(sandbox) == (0, "redriven: 0\n")
    assert await published(sandbox, sandbox.topics.customer_events) == 4, "2 inputs, 2 redriven"


async def test_a_dry_run_lists_what_it_would_redrive_and_publishes_and_marks_nothing(
    sandbox: Sandbox,
) -> None:
    customer = sample_customer(0)
    await sandbox.start_worker()
    await sync(sandbox, customer.dossier_number)
    await sandbox.read(sandbox.topics.dead_letter, 1)
    state_before = await published(sandbox, sandbox.topics.state)

    code, output = await redrive_process(sandbox, "--dry-run")

    header, letter, *counts = output.splitlines()
    assert header.split() == ["time", "event", "type", "key", "reason"]
    assert letter.split()[2:] == [
        "customer.changed",
        customer.dossier_number,
        "customer_not_found",
        "->",
        sandbox.topics.customer_events,
    ]
    assert (code, counts) == (
        0,
        ["customer_not_found: 1", "would redrive: 1 (dry run: nothing published or marked)"],
    )
    assert await published(sandbox, sandbox.topics.customer_events) == 1
    assert await published(sandbox, sandbox.topics.state) == state_before
    assert await waiting_keys(sandbox) == [customer.dossier_number]

    seed_customer(sandbox.anva, sandbox.portal, 0)
    assert await redrive_process(sandbox) == (0, "customer_not_found: 1\nredriven: 1\n")
    _, redriven = await sandbox.results(2)
    assert redriven.data.status == "succeeded"


@pytest.mark.parametrize("group_suffix", ["-redrive", "-redrive-customer_not_found"])
async def test_a_letter_the_old_offset_groups_redrove_counts_as_redriven(
    sandbox: Sandbox, group_suffix: str
) -> None:
    first, second = sample_customer(0).dossier_number, sample_customer(1).dossier_number
    await sandbox.start_worker()
    await sync(sandbox, first)
    (old,) = await sandbox.read(sandbox.topics.dead_letter, 1)
    await sync(sandbox, second)
    await sandbox.read(sandbox.topics.dead_letter, 2)
    consumer = AIOKafkaConsumer(
        **client_options(sandbox.kafka),
        group_id=sandbox.group_id + group_suffix,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:  # what a redrive before marks committed once it had redriven the first letter
        partition = TopicPartition(old.topic, old.partition)
        consumer.assign([partition])
        await consumer.commit({partition: old.offset + 1})
    finally:
        await consumer.stop()

    assert await waiting_keys(sandbox) == [second]
    assert await redrive_process(sandbox) == (0, "customer_not_found: 1\nredriven: 1\n")
