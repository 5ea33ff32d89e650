"""The consumer lets revoked partitions go without a broker: their events are asked to stop and
awaited, what finished is committed and what finished above the commit point written down; a
message taken before a revoke and not yet started is dropped; the next owner skips what its
previous owner finished. The service, the result publisher and Kafka's consumer are fakes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from aiokafka.structs import TopicPartition
from faststream.kafka import KafkaBroker
from pydantic import SecretStr

from app.clients.limiter import LiveWork
from app.events import ResultData, ResultEvent
from app.kafka.backfill import BackfillIntake
from app.kafka.consumer import EventConsumer
from app.kafka.keyed import NewestArrivals
from app.kafka.membership import GroupMembership
from app.kafka.partition_handover import HandoverRecord, HandoverRecords, handover_key
from app.metrics import Metrics
from app.sandbox.tenant import sandbox_contracts
from app.service import Outcome
from app.settings import AnvaSettings, ElementsSettings, KafkaSettings, PortalSettings, Settings
from app.ticket import Ticket

GROUP = "elements-sync-test"
TOPIC = "customer-events"
P = TopicPartition(TOPIC, 0)
Q = TopicPartition(TOPIC, 1)
PATIENCE_S = 2.0


def settings(*, max_in_flight: int = 8, handover_timeout_s: float = 5.0) -> Settings:
    return Settings(
        kafka=KafkaSettings(
            group_id=GROUP, max_in_flight=max_in_flight, handover_timeout_s=handover_timeout_s
        ),
        anva=AnvaSettings(base_url="http://anva/api", token=SecretStr("t")),
        portal=PortalSettings(base_url="http://portal/v1", token=SecretStr("t")),
        elements=ElementsSettings(
            base_url="http://elements",
            client_id="c",
            client_secret=SecretStr("s"),
            organisation="1",
            kantoor_id=1,
            dossierstatus_id=1,
        ),
        contracts=sandbox_contracts(),
    )


class Service:
    """What each message's value says it does: `done` succeeds at once, `waits` waits at a
    step boundary until its partition is handed over, `in-request` is inside an Elements
    request until `answer` is set (and then reaches a boundary)."""

    def __init__(self) -> None:
        self.handled: list[int] = []
        self.answer = asyncio.Event()

    async def handle(
        self, raw: bytes, *, key: str | None, arrived: float, ticket: Ticket
    ) -> Outcome:
        offset = int(json.loads(raw)["offset"])
        self.handled.append(offset)
        what = json.loads(raw)["does"]
        if what == "waits":
            await ticket.pause(3600)
        elif what == "in-request":
            await self.answer.wait()
            await ticket.pause(3600)
        return Outcome(
            ResultEvent(data=ResultData(eventId=str(offset), eventType=None, status="succeeded"))
        )


class Outcomes:
    def __init__(self) -> None:
        self.delivered: list[tuple[TopicPartition, int]] = []

    async def deliver(self, record: ConsumerRecord[Any, Any], outcome: Outcome) -> None:
        self.delivered.append((TopicPartition(record.topic, record.partition), record.offset))

    def failed(self, step: str, error: BaseException) -> None:
        raise AssertionError(f"{step} failed: {error!r}")


class KafkaConsumer:
    """The calls the consumer makes on aiokafka's consumer here: commits and flow control."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))

    def assignment(self) -> set[TopicPartition]:
        return {P, Q}

    def pause(self, *partitions: TopicPartition) -> None:
        pass

    def resume(self, *partitions: TopicPartition) -> None:
        pass


@dataclass
class Message:
    raw_message: ConsumerRecord[bytes, bytes]


def message(
    partition: TopicPartition, offset: int, does: str = "done", *, key: str | None = None
) -> Message:
    value = json.dumps({"offset": offset, "does": does}).encode()
    return Message(
        ConsumerRecord(
            topic=partition.topic,
            partition=partition.partition,
            offset=offset,
            timestamp=1_000 + offset,
            timestamp_type=0,
            key=(key or f"k{partition.partition}-{offset}").encode(),
            value=value,
            checksum=None,
            serialized_key_size=0,
            serialized_value_size=len(value),
            headers=[],
        )
    )


@dataclass
class Consumer:
    consumer: EventConsumer
    service: Service
    outcomes: Outcomes
    kafka: KafkaConsumer
    saved: dict[str, bytes] = field(default_factory=dict)
    records: HandoverRecords | None = None

    async def take(self, *messages: Message) -> None:
        for msg in messages:
            await self.consumer.on_message(msg)  # type: ignore[arg-type]

    async def until_handled(self, *offsets: int) -> None:
        async with asyncio.timeout(PATIENCE_S):
            while not set(offsets) <= set(self.service.handled):  # noqa: ASYNC110 - a fake
                await asyncio.sleep(0.01)

    async def until_delivered(self, count: int) -> None:
        async with asyncio.timeout(PATIENCE_S):
            while len(self.outcomes.delivered) < count:  # noqa: ASYNC110 - a fake
                await asyncio.sleep(0.01)

    def record(self, partition: TopicPartition) -> HandoverRecord:
        return HandoverRecord.model_validate_json(self.saved[handover_key(GROUP, partition)])


async def started(config: Settings, *, saved: dict[str, bytes] | None = None) -> Consumer:
    stored: dict[str, bytes] = {} if saved is None else saved

    async def write(key: str, value: bytes) -> None:
        stored[key] = value

    records = HandoverRecords(GROUP, write)
    for key, value in stored.items():
        records.read(key, value)
    service, outcomes, kafka = Service(), Outcomes(), KafkaConsumer()
    metrics = Metrics()
    consumer = EventConsumer(
        KafkaBroker("127.0.0.1:9"),
        service,  # type: ignore[arg-type]
        config,
        metrics,
        outcomes,  # type: ignore[arg-type]
        backfill=BackfillIntake(config.backfill, metrics, paused=lambda: False),
        live=LiveWork(),
        arrivals=NewestArrivals(),
        handover_records=records,
        membership=GroupMembership(metrics, config.topics),
    )
    consumer._live_consumer = lambda: kafka  # type: ignore[method-assign]
    await consumer.partitions_revoked(set())  # joining the group
    await consumer.partitions_assigned({P, Q})
    return Consumer(consumer, service, outcomes, kafka, stored, records)


@pytest.fixture
async def consumer() -> AsyncIterator[Consumer]:
    running = await started(settings())
    yield running
    await running.consumer.drain()


async def test_a_revoke_stops_the_partitions_events_and_commits_what_finished(
    consumer: Consumer,
) -> None:
    await consumer.take(
        message(P, 0), message(P, 1, "waits"), message(P, 2), message(Q, 0, "waits")
    )
    await consumer.until_delivered(2)
    await consumer.until_handled(1)

    await asyncio.wait_for(consumer.consumer.partitions_revoked({P}), PATIENCE_S)

    assert sorted(consumer.outcomes.delivered) == [(P, 0), (P, 2)], "the stopped one has none"
    assert consumer.kafka.commits[-1] == {P: 1}, "up to the stopped event"
    assert consumer.record(P) == HandoverRecord(resumes_at=1, done={2: 1002})
    assert P not in consumer.consumer.assigned
    assert Q in consumer.consumer.assigned
    assert handover_key(GROUP, Q) not in consumer.saved, "the other partition's event runs on"


async def test_the_revoke_returns_only_after_the_request_in_flight_was_answered(
    consumer: Consumer,
) -> None:
    await consumer.take(message(P, 0, "in-request"))
    await consumer.until_handled(0)

    revoking = asyncio.create_task(consumer.consumer.partitions_revoked({P}))
    await asyncio.sleep(0.2)
    assert not revoking.done()
    consumer.service.answer.set()

    await asyncio.wait_for(revoking, PATIENCE_S)
    assert consumer.outcomes.delivered == []


async def test_a_message_taken_before_a_revoke_and_not_yet_started_is_dropped() -> None:
    running = await started(settings(max_in_flight=1))
    await running.take(message(P, 0, "waits"))
    await running.until_handled(0)
    waiting_for_a_slot = asyncio.create_task(running.consumer.on_message(message(P, 1)))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert not waiting_for_a_slot.done()

    await asyncio.wait_for(running.consumer.partitions_revoked({P, Q}), PATIENCE_S)
    await asyncio.wait_for(waiting_for_a_slot, PATIENCE_S)

    assert running.service.handled == [0]
    assert running.outcomes.delivered == []
    assert running.kafka.commits == [], "nothing finished: the committed offset stays"
    await running.consumer.drain()


async def test_a_message_of_a_partition_being_let_go_is_not_taken(consumer: Consumer) -> None:
    await consumer.take(message(P, 0, "in-request"))
    await consumer.until_handled(0)
    revoking = asyncio.create_task(consumer.consumer.partitions_revoked({P}))
    await asyncio.sleep(0.05)

    await consumer.take(message(P, 1))
    consumer.service.answer.set()
    await asyncio.wait_for(revoking, PATIENCE_S)

    assert consumer.service.handled == [0]


async def test_the_next_owner_skips_what_the_previous_one_finished_and_processes_the_rest() -> None:
    previous = await started(settings())
    await previous.take(message(P, 0, "waits"), message(P, 1), message(P, 2, "waits"))
    await previous.take(message(P, 3))
    await previous.until_delivered(2)
    await previous.until_handled(0, 2)
    await asyncio.wait_for(previous.consumer.drain(), PATIENCE_S)
    assert previous.record(P) == HandoverRecord(resumes_at=0, done={1: 1001, 3: 1003})

    following = await started(settings(), saved=previous.saved)
    await following.take(message(P, 0), message(P, 1), message(P, 2), message(P, 3), message(P, 4))
    await following.until_delivered(3)
    await asyncio.sleep(0.05)

    assert sorted(following.service.handled) == [0, 2, 4]
    assert sorted(o for _, o in following.outcomes.delivered) == [0, 2, 4]
    assert following.kafka.commits[-1] == {P: 5}
    await following.consumer.drain()


async def test_another_message_at_a_finished_offset_is_processed() -> None:
    record = HandoverRecord(resumes_at=0, done={1: 999})
    running = await started(
        settings(), saved={handover_key(GROUP, P): record.model_dump_json().encode()}
    )

    await running.take(message(P, 0), message(P, 1))
    await running.until_delivered(2)

    assert sorted(running.service.handled) == [0, 1]
    await running.consumer.drain()


async def test_drain_hands_everything_over_and_cancels_an_event_past_the_deadline() -> None:
    running = await started(settings(handover_timeout_s=0.2))
    await running.take(
        message(P, 0),
        message(P, 1, "in-request", key="stuck"),
        message(P, 2, key="stuck"),  # queued behind it: never starts
        message(Q, 0, "waits"),
    )
    await running.until_delivered(1)
    await running.until_handled(1, 0)

    drained = await asyncio.wait_for(running.consumer.drain(), PATIENCE_S)

    assert drained is False, "the event in its request was cancelled at the deadline"
    assert running.outcomes.delivered == [(P, 0)]
    assert running.kafka.commits[-1] == {P: 1}
    assert running.consumer._handovers._taken == {}, "every job ended, also one never started"
    assert not running.consumer.consuming
    await running.take(message(P, 3))
    assert sorted(running.service.handled) == [0, 0, 1], "P:0, Q:0 and P:1; never P:2 or P:3"


async def test_the_consumer_counts_as_consuming_from_its_first_assignment_on() -> None:
    config, metrics = settings(), Metrics()
    consumer = EventConsumer(
        KafkaBroker("127.0.0.1:9"),
        Service(),  # type: ignore[arg-type]
        config,
        metrics,
        Outcomes(),  # type: ignore[arg-type]
        backfill=BackfillIntake(config.backfill, metrics, paused=lambda: False),
        live=LiveWork(),
        arrivals=NewestArrivals(),
        handover_records=HandoverRecords(GROUP, lambda key, value: asyncio.sleep(0)),
        membership=(membership := GroupMembership(metrics, config.topics)),
    )
    assert not consumer.consuming

    await consumer.partitions_revoked(set())
    joined = (membership.in_group, consumer.consuming)
    await consumer.partitions_assigned(set())  # a replica beyond the partition count
    assigned = consumer.consuming
    await consumer.partitions_revoked(set())  # a later rebalance: every member waits in it
    rebalancing = consumer.consuming
    membership.left_group()

    assert joined == (True, False)
    assert assigned is rebalancing is True
    assert not consumer.consuming


def test_handover_records_of_other_groups_and_unreadable_ones_are_passed_over() -> None:
    records = HandoverRecords(GROUP, lambda key, value: asyncio.sleep(0))
    good = HandoverRecord(resumes_at=3, done={4: 1}).model_dump_json().encode()

    records.read(handover_key("another-group", P), good)
    records.read(handover_key(GROUP, Q), b"{not json")
    records.read("dossier/100000", b"{}")
    records.read(handover_key(GROUP, P), good)

    assert records.get(P) == HandoverRecord(resumes_at=3, done={4: 1})
    assert records.get(Q) is None
    records.read(handover_key(GROUP, P), None)
    assert records.get(P) is None
