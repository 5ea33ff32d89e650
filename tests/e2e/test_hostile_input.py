"""Whatever a producer puts in a message, it ends with one result, a dead letter and a released offset."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from app.kafka.connection import client_options
from app.sandbox.simulators.seed import seed_customer
from app.sandbox.world import Sandbox
from tests.e2e.helpers import eventually, sync

pytestmark = pytest.mark.e2e

JSON_HEADERS = [("content-type", b"application/json")]
TWO_MEGABYTES = 2 * 1024 * 1024
HOSTILE: dict[str, tuple[bytes | None, list[tuple[str, bytes | None]], str]] = {
    "nested": (b"[" * 100_000 + b"]" * 100_000, JSON_HEADERS, "not_json"),
    "long-number": (b'{"id": ' + b"9" * 5000 + b"}", JSON_HEADERS, "not_json"),
    "bad-json": (b"{not json", JSON_HEADERS, "not_json"),
    "null": (None, JSON_HEADERS, "not_json"),
    "odd-headers": (b"[]", [("empty", None), ("odd", b"\xff\xfe")], "not_object"),
    "megabytes": (b'{"id": "' + b"x" * TWO_MEGABYTES + b'"}', JSON_HEADERS, "too_large"),
}


async def committed_up_to_the_end(sandbox: Sandbox, topic: str) -> bool:
    """Whether the worker's group committed every partition of `topic` to its end offset."""
    consumer = AIOKafkaConsumer(**client_options(sandbox.kafka), group_id=sandbox.group_id)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or set()
        ]
        ends = await consumer.end_offsets(partitions)
        for partition in partitions:
            if ends[partition] and (await consumer.committed(partition) or 0) < ends[partition]:
                return False
        return True
    finally:
        await consumer.stop()


async def test_hostile_messages_with_json_headers_get_a_rejected_result_and_a_dead_letter(
    sandbox: Sandbox,
) -> None:
    runtime = await sandbox.start_worker()
    for name, (value, headers, _) in HOSTILE.items():
        await sandbox.publish_raw(sandbox.topics.customer_events, name, value, headers=headers)

    results = {r.subject: r for r in await sandbox.results(len(HOSTILE))}
    dead = {r.key.decode(): r for r in await sandbox.read(sandbox.topics.dead_letter, len(HOSTILE))}

    for name, (_, _, reason) in HOSTILE.items():
        assert results[name].data.status == "rejected", name
        assert results[name].data.error is not None
        assert results[name].data.error.code == reason, name
        assert dict(dead[name].headers)["x-dead-letter-reason"] == reason.encode()
    assert dead["nested"].value == HOSTILE["nested"][0]
    assert dict(dead["nested"].headers)["content-type"] == b"application/json"
    assert dict(dead["odd-headers"].headers)["odd"] == "\ufffd\ufffd".encode()
    too_large = dict(dead["megabytes"].headers)
    assert too_large["x-dead-letter-truncated"] == str(TWO_MEGABYTES + 10).encode()
    assert dead["megabytes"].value == HOSTILE["megabytes"][0][: 64 * 1024]
    failures = runtime.pipeline.metrics.finish_failures.labels("dead_letter")._value.get()
    assert failures >= 2, "the full dead letter and the one without headers were too large"
    await eventually(lambda: runtime.consumer.consuming)
    assert await committed_up_to_the_end(sandbox, sandbox.topics.customer_events)


async def test_a_key_that_is_not_utf8_still_gets_its_result_keyed_as_sent(
    sandbox: Sandbox,
) -> None:
    await sandbox.start_worker()

    await sandbox.publish_raw(
        sandbox.topics.customer_events, b"\xff\xfe", b"{}", headers=JSON_HEADERS
    )
    (record,) = await sandbox.read(sandbox.topics.results, 1)

    assert record.key == b"\xff\xfe"
    assert b'"status":"rejected"' in record.value


async def test_a_failed_event_with_cloudevents_headers_is_dead_lettered_with_them(
    sandbox: Sandbox,
) -> None:
    await sandbox.start_worker()

    event_id = await sync(sandbox, "999999")
    (result,) = await sandbox.results(1)
    (dead,) = await sandbox.read(sandbox.topics.dead_letter, 1)

    assert (result.data.eventId, result.data.status) == (event_id, "failed")
    headers = dict(dead.headers)
    assert headers["content-type"] == b"application/cloudevents+json; charset=UTF-8"
    assert headers["x-event-id"] == event_id.encode()
    assert await committed_up_to_the_end(sandbox, sandbox.topics.customer_events)


async def test_the_worker_goes_on_with_good_events_after_hostile_ones(sandbox: Sandbox) -> None:
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    await sandbox.start_worker()

    value, headers, _ = HOSTILE["nested"]
    await sandbox.publish_raw(
        sandbox.topics.customer_events, customer.dossier_number, value, headers=headers
    )
    await sync(sandbox, customer.dossier_number)
    bad, good = await sandbox.results(2)

    assert (bad.data.status, good.data.status) == ("rejected", "succeeded")
