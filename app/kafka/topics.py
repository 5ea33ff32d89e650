"""Create the service's topics when missing.

FastStream's subscriber would auto-create a missing topic with one partition, which
would serialise the whole input; creating them first gives `KAFKA_TOPIC_PARTITIONS`.
"""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.settings import KafkaSettings, TopicSettings


async def ensure_topics(kafka: KafkaSettings, topics: TopicSettings) -> None:
    names = [*topics.inputs, topics.backfill, topics.results, topics.dead_letter]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(n, num_partitions=kafka.topic_partitions, replication_factor=1)
                        for n in missing
                    ]
                )
    finally:
        await admin.close()
