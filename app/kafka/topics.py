"""The service's topics: checked at start, and created when missing unless
`KAFKA_CREATE_TOPICS=false` (managed clusters where topics are provisioned elsewhere).

This is the one place topics are made. FastStream's subscriber would create a missing
input topic with one partition, serialising the whole input, so the broker is built
without that (`allow_auto_create_topics=False`). A consumer's metadata request still asks
brokers with `auto.create.topics.enable` to create what it subscribes to, so with creation
off the worker refuses to start until every topic exists, rather than subscribing to a
missing one. aiokafka returns `create_topics` failures in the response instead of raising:
each is reported with its topic's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from app.errors import TopicSetupError
from app.kafka.connection import client_options
from app.settings import KafkaSettings, TopicSettings

BROKER_DEFAULT_REPLICATION = -1
"""CreateTopics' "use the broker's `default.replication.factor`" (Kafka 2.4+, KIP-464)."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    configs: dict[str, str] = field(default_factory=dict)


def service_topics(topics: TopicSettings) -> list[TopicSpec]:
    """Every topic the service reads or writes; the state topic keeps the last value per key."""
    return [
        *(TopicSpec(name) for name in topics.inputs),
        TopicSpec(topics.results),
        TopicSpec(topics.dead_letter),
        TopicSpec(topics.backfill),
        TopicSpec(topics.state, {"cleanup.policy": "compact"}),
    ]


def new_topic(spec: TopicSpec, kafka: KafkaSettings) -> NewTopic:
    # aiokafka's NewTopic reads -1 as "replicas assigned by hand" and then insists on
    # assignments: an empty mapping sends none, and the broker places the replicas.
    factor = kafka.replication_factor
    return NewTopic(
        spec.name,
        num_partitions=kafka.topic_partitions,
        replication_factor=factor or BROKER_DEFAULT_REPLICATION,
        replica_assignments=None if factor else {},
        topic_configs=spec.configs,
    )


def creation_errors(topic_errors: Iterable[dict[str, Any]]) -> list[str]:
    """`topic: ErrorName (code): message` for each topic the cluster refused to create;
    one that exists already (another replica won the race) is no error."""
    problems = []
    for entry in topic_errors:
        code = entry["error_code"]
        if not code:
            continue
        error = for_code(code)
        if error is TopicAlreadyExistsError:
            continue
        detail = entry.get("error_message") or error.description
        problems.append(f"{entry['topic']}: {error.__name__} ({code}): {detail}")
    return problems


async def ensure_topics(kafka: KafkaSettings, topics: TopicSettings) -> None:
    """Return once every service topic exists; TopicSetupError names those that do not."""
    wanted = service_topics(topics)
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in wanted if spec.name not in existing]
        if not missing:
            return
        names = ", ".join(spec.name for spec in missing)
        if not kafka.create_topics:
            raise TopicSetupError(
                f"missing topics {names}, and KAFKA_CREATE_TOPICS=false: create them first"
            )
        response = await admin.create_topics([new_topic(spec, kafka) for spec in missing])
        problems = creation_errors(response.to_object()["topic_errors"])
        if problems:
            raise TopicSetupError("could not create topics: " + "; ".join(problems))
    finally:
        await admin.close()
