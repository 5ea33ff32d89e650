"""The worker's topics: created with their settings, or, with creation off, awaited and never made."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from structlog.testing import capture_logs

from app.application import Runtime
from app.errors import TopicSetupError
from app.kafka.topics import service_topics
from app.sandbox.simulators.seed import seed_customer
from app.sandbox.world import Sandbox
from tests.e2e.helpers import eventually, sync

pytestmark = pytest.mark.e2e

RETRYING = "Kafka not ready for the worker; retrying"
RETRIES_SEEN = 3
"""Attempts to start that the test sees refused before it creates the topics itself."""


async def test_the_worker_creates_every_service_topic_and_compacts_the_state_topic(
    sandbox: Sandbox,
) -> None:
    names = [spec.name for spec in service_topics(sandbox.topics)]
    await sandbox.start_worker()

    async with sandbox.admin() as admin:
        described = await admin.describe_topics(names)
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    partitions = {topic["topic"]: len(topic["partitions"]) for topic in described}
    policies = {
        resource["resource_name"]: {
            entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]
        }.get("cleanup.policy", "delete")
        for response in responses
        for resource in response.to_object()["resources"]
    }

    assert len(names) == 7
    assert {sandbox.topics.backfill, sandbox.topics.state} <= set(names)
    assert partitions == dict.fromkeys(names, sandbox.options.topic_partitions)
    assert policies == {
        name: "compact" if name == sandbox.topics.state else "delete" for name in names
    }


async def test_with_topic_creation_off_the_worker_creates_no_topic_and_starts_once_they_exist(
    sandbox: Sandbox,
) -> None:
    settings = sandbox.settings()
    settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"create_topics": False})}
    )
    specs = service_topics(sandbox.topics)
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    runtime = Runtime(settings)
    with pytest.raises(TopicSetupError) as refused:
        await runtime.start()
    with capture_logs() as logs:
        starting = asyncio.create_task(runtime.start_when_kafka_answers())
        try:
            await eventually(lambda: sum(e["event"] == RETRYING for e in logs) >= RETRIES_SEEN)
            async with sandbox.admin() as admin:
                before = set(await admin.list_topics())
                await admin.create_topics(
                    [NewTopic(spec.name, 4, 1, topic_configs=spec.configs) for spec in specs]
                )
            await asyncio.wait_for(starting, 30)
            event_id = await sync(sandbox, customer.dossier_number)
            (result,) = await sandbox.results(1)
        finally:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            await runtime.stop()

    assert "KAFKA_CREATE_TOPICS=false" in str(refused.value)
    assert all(spec.name in str(refused.value) for spec in specs)
    assert before.isdisjoint(spec.name for spec in specs)
    assert (result.data.eventId, result.data.status) == (event_id, "succeeded")
