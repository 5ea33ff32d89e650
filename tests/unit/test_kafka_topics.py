"""Topic creation: what is asked of the cluster, and every refusal reported with its topic.

The embedded broker refuses nothing but an existing name (it accepts any replication factor,
partition count or config), so the cluster's other answers come from a fake admin client
returning aiokafka's own CreateTopics response, as Kafka sends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.protocol.admin import CreateTopicsResponse_v3
from pydantic import SecretStr

from app.errors import TopicSetupError
from app.kafka import topics as topics_module
from app.kafka.topics import creation_errors, ensure_topics, new_topic, service_topics
from app.settings import KafkaSettings, TopicSettings

TOPICS = TopicSettings()
ALL = [
    "customer-events",
    "contract-events",
    "form-submissions",
    "sync-results",
    "sync-dead-letter",
    "customer-backfill",
    "elements-sync-state",
]


@dataclass
class Cluster:
    """What the fake admin client answers: the topics that exist, refusals per topic
    (error code, message); and what it was asked."""

    existing: set[str] = field(default_factory=set)
    errors: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    created: list[tuple[Any, ...]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    closed: bool = False

    def admin(self, **options: Any) -> FakeAdmin:
        self.options = options
        return FakeAdmin(self)


class FakeAdmin:
    """The part of `AIOKafkaAdminClient` that `ensure_topics` uses, answering from a `Cluster`."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    async def start(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return sorted(self._cluster.existing)

    async def create_topics(self, new_topics: list[NewTopic]) -> CreateTopicsResponse_v3:
        requests = [AIOKafkaAdminClient._convert_new_topic_request(t) for t in new_topics]
        self._cluster.created = requests
        refusals = self._cluster.errors
        return CreateTopicsResponse_v3(
            throttle_time_ms=0,
            topic_errors=[(r[0], *refusals.get(r[0], (0, None))) for r in requests],
        )

    async def close(self) -> None:
        self._cluster.closed = True


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> Cluster:
    cluster = Cluster()
    monkeypatch.setattr(topics_module, "AIOKafkaAdminClient", cluster.admin)
    return cluster


def test_the_service_topics_are_all_the_topic_settings_and_only_the_state_topic_is_compacted() -> (
    None
):
    specs = service_topics(TOPICS)

    assert [spec.name for spec in specs] == ALL
    assert {spec.name: spec.configs for spec in specs if spec.configs} == {
        "elements-sync-state": {"cleanup.policy": "compact"}
    }


def test_a_new_topic_asks_for_the_broker_default_replication_unless_one_is_configured() -> None:
    (state,) = [spec for spec in service_topics(TOPICS) if spec.name == "elements-sync-state"]
    default = AIOKafkaAdminClient._convert_new_topic_request(new_topic(state, KafkaSettings()))
    three = AIOKafkaAdminClient._convert_new_topic_request(
        new_topic(state, KafkaSettings(replication_factor=3, topic_partitions=6))
    )

    assert default == ("elements-sync-state", 4, -1, [], [("cleanup.policy", "compact")])
    assert three == ("elements-sync-state", 6, 3, [], [("cleanup.policy", "compact")])


def test_creation_errors_name_each_refused_topic_with_the_error_and_the_cluster_message() -> None:
    response = CreateTopicsResponse_v3(
        throttle_time_ms=0,
        topic_errors=[
            ("customer-events", 0, None),
            ("sync-results", 38, "Replication factor: 3 larger than available brokers: 1."),
            ("sync-dead-letter", 36, "Topic 'sync-dead-letter' already exists."),
            ("elements-sync-state", 29, None),
        ],
    )

    assert creation_errors(response.to_object()["topic_errors"]) == [
        "sync-results: InvalidReplicationFactorError (38): "
        "Replication factor: 3 larger than available brokers: 1.",
        "elements-sync-state: TopicAuthorizationFailedError (29): Returned by the broker when "
        "the client is not authorized to access the requested topic.",
    ]


async def test_every_error_create_topics_returns_is_raised_with_its_topic_name(
    admin: Cluster,
) -> None:
    admin.errors = {
        "sync-results": (38, "Replication factor: 3 larger than available brokers: 1."),
        "elements-sync-state": (44, "Topic replication factor must be 3"),
        "customer-events": (36, "Topic 'customer-events' already exists."),
    }

    with pytest.raises(TopicSetupError) as raised:
        await ensure_topics(KafkaSettings(replication_factor=3), TOPICS)

    assert str(raised.value) == (
        "could not create topics: "
        "sync-results: InvalidReplicationFactorError (38): "
        "Replication factor: 3 larger than available brokers: 1.; "
        "elements-sync-state: PolicyViolationError (44): Topic replication factor must be 3"
    )
    assert admin.closed


async def test_a_topic_another_replica_created_meanwhile_is_no_error(
    admin: Cluster,
) -> None:
    admin.errors = {name: (36, "Topic already exists.") for name in ALL}

    await ensure_topics(KafkaSettings(), TOPICS)

    assert [request[0] for request in admin.created] == ALL


async def test_only_missing_topics_are_created(admin: Cluster) -> None:
    admin.existing = {"customer-events", "sync-results", "someone-elses-topic"}

    await ensure_topics(KafkaSettings(topic_partitions=8), TOPICS)

    assert admin.created == [
        (name, 8, -1, [], [("cleanup.policy", "compact")] if name == "elements-sync-state" else [])
        for name in ALL
        if name not in admin.existing
    ]


async def test_with_creation_off_missing_topics_are_named_and_nothing_is_created(
    admin: Cluster,
) -> None:
    admin.existing = {"customer-events", "contract-events", "form-submissions", "sync-results"}

    with pytest.raises(TopicSetupError) as raised:
        await ensure_topics(KafkaSettings(create_topics=False), TOPICS)

    assert str(raised.value) == (
        "missing topics sync-dead-letter, customer-backfill, elements-sync-state, "
        "and KAFKA_CREATE_TOPICS=false: create them first"
    )
    assert admin.created == []


async def test_with_creation_off_and_every_topic_there_nothing_is_asked(
    admin: Cluster,
) -> None:
    admin.existing = set(ALL)

    await ensure_topics(KafkaSettings(create_topics=False), TOPICS)

    assert admin.created == []


async def test_the_admin_client_connects_with_the_security_settings(
    admin: Cluster,
) -> None:
    admin.existing = set(ALL)
    kafka = KafkaSettings(
        bootstrap_servers="k1:9096",
        client_id="sync-7",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="elements-sync",
        sasl_password=SecretStr("sasl-secret"),
    )

    await ensure_topics(kafka, TOPICS)

    assert admin.options == {
        "bootstrap_servers": ["k1:9096"],
        "client_id": "sync-7",
        "security_protocol": "SASL_PLAINTEXT",
        "ssl_context": None,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "elements-sync",
        "sasl_plain_password": "sasl-secret",
    }
