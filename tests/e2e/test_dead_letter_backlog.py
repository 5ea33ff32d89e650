"""`elements_sync_dead_letters_outstanding{reason}` — what ElementsSyncDeadLetters fires on —
counts a worker's dead letters until they are handled: redriven by `python -m app redrive` (a
mark on the state topic, which the worker follows), or dismissed by moving their reason's older
redrive group to the end of the dead-letter topic (what `kafka-consumer-groups.sh
--reset-offsets --to-latest` does), through the real broker."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from app.commands.dead_letters import Selection, kafka_readers, waiting
from app.commands.redrive import redrive
from app.kafka.connection import client_options
from app.sandbox.simulators.seed import sample_customer, seed_customer
from app.sandbox.world import CLOUDEVENTS_PRODUCER_HEADERS, Sandbox
from tests.e2e.helpers import eventually, sync

pytestmark = pytest.mark.e2e

REFRESH_S = 0.2


async def dismiss(sandbox: Sandbox, reason: str) -> None:
    """Move the reason's redrive group to the end of the dead-letter topic."""
    settings = sandbox.settings()
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka),
        group_id=f"{settings.kafka.group_id}-redrive-{reason}",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        topic = settings.topics.dead_letter
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        end = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.commit(end)
    finally:
        await consumer.stop()


async def test_dead_letters_are_outstanding_until_redriven_or_dismissed(sandbox: Sandbox) -> None:
    customer = sample_customer(0)
    runtime = await sandbox.start_worker(dead_letters_refresh_s=REFRESH_S)
    registry = runtime.pipeline.metrics.registry

    def outstanding(reason: str) -> float | None:
        return registry.get_sample_value(
            "elements_sync_dead_letters_outstanding", {"reason": reason}
        )

    await eventually(lambda: outstanding("customer_not_found") == 0)
    await sync(sandbox, customer.dossier_number)
    await sandbox.publish_raw(
        sandbox.topics.customer_events, "bad", b"not json", headers=CLOUDEVENTS_PRODUCER_HEADERS
    )
    await eventually(lambda: (outstanding("customer_not_found"), outstanding("not_json")) == (1, 1))
    seed_customer(sandbox.anva, sandbox.portal, 0)

    tally = await redrive(sandbox.settings(), selection=Selection(reason="customer_not_found"))
    await eventually(lambda: outstanding("customer_not_found") == 0)
    still = outstanding("not_json")
    await dismiss(sandbox, "not_json")
    await eventually(lambda: outstanding("not_json") == 0)
    results = await sandbox.results(3)
    async with kafka_readers(sandbox.kafka) as reader:
        listed = await waiting(reader, sandbox.settings(), Selection())

    assert dict(tally.redriven) == {"customer_not_found": 1}
    assert still == 1, "a redrive of another reason leaves it"
    assert [r.data.status for r in results].count("succeeded") == 1, "the redriven one"
    assert listed.letters == [], "dead-letters and redrive pass the dismissed one over too"
