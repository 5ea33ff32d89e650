"""`/readyz` says why a worker is not ready, step by step as `Runtime.start()` meets them, on a
real `Runtime` whose Kafka steps are fakes held at gates: reaching Kafka and its topics, the
state topic loading, the consumer group giving the partitions, the state topic read for them;
then ready (200) while the broker answers, and not ready again while stopping. The metrics a
pod exports from the start, before Kafka answers, are read from the same runtime.

The e2e tests (tests/e2e/test_worker_process.py) show the Kafka reasons on a worker process;
"the state topic loading" is shown here: a state topic slow enough to catch is not practical
to make there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiokafka.structs import TopicPartition

import app.application
from app.application import Runtime
from app.errors import TopicSetupError
from app.settings import RetrySettings, Settings
from app.web.routes import http_app
from tests.unit.test_consumer_handover import settings as handover_settings

PATIENCE_S = 2.0
ASSIGNED = {TopicPartition("customer-events", 0), TopicPartition("form-submissions", 2)}


def worker_settings() -> Settings:
    base = handover_settings()
    return base.model_copy(
        update={"retry": RetrySettings(initial_backoff_s=0.01, max_backoff_s=0.02)}
    )


@dataclass
class Gates:
    """Each of start()'s Kafka steps waits at its gate; `failures` makes the topic check fail
    (and close its gate again)."""

    topics: asyncio.Event = field(default_factory=asyncio.Event)
    load: asyncio.Event = field(default_factory=asyncio.Event)
    join: asyncio.Event = field(default_factory=asyncio.Event)
    catch_up: asyncio.Event = field(default_factory=asyncio.Event)
    failures: list[Exception] = field(default_factory=list)
    broker_answers: bool = True


@dataclass
class Worker:
    runtime: Runtime
    gates: Gates
    http: httpx.AsyncClient

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        answer = await self.http.get("/readyz")
        body: dict[str, Any] = answer.json()
        return answer.status_code, body

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(PATIENCE_S):
            while not condition():  # noqa: ASYNC110 - a fake's state
                await asyncio.sleep(0.005)


def gated(gate: asyncio.Event, then: Callable[[], Awaitable[Any]] | None = None) -> Any:
    async def step(*args: Any, **kwargs: Any) -> Any:
        await gate.wait()
        return await then() if then is not None else None

    return step


@pytest.fixture
async def worker(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Worker]:
    runtime = Runtime(worker_settings())
    gates = Gates()

    async def ensure_topics(*args: Any) -> None:
        await gates.topics.wait()
        if gates.failures:
            gates.topics.clear()  # the next attempt waits for the test again
            raise gates.failures.pop(0)

    async def join_the_group() -> None:
        consumer = runtime.consumer
        await consumer.partitions_revoked(set())  # aiokafka's first call: joining
        await gates.join.wait()
        await consumer.partitions_assigned(ASSIGNED)

    async def ping(*args: Any, **kwargs: Any) -> bool:
        return gates.broker_answers

    monkeypatch.setattr(app.application, "ensure_topics", ensure_topics)
    monkeypatch.setattr(runtime.memory_load, "load", gated(gates.load))
    monkeypatch.setattr(runtime.pipeline.portal, "start", lambda: None)
    monkeypatch.setattr(runtime.broker, "start", join_the_group)
    monkeypatch.setattr(runtime.broker, "ping", ping)
    monkeypatch.setattr(runtime.memory_load.state_topic, "caught_up", gated(gates.catch_up))
    monkeypatch.setattr(runtime.dead_letters, "start", lambda: None)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=http_app(runtime)), base_url="http://worker"
    ) as http:
        yield Worker(runtime, gates, http)
    for gate in (gates.topics, gates.load, gates.join, gates.catch_up):
        gate.set()
    await runtime.stop()


async def test_readyz_names_each_step_the_start_is_at_then_answers_ready(worker: Worker) -> None:
    worker.gates.failures.append(
        TopicSetupError("topics missing: customer-events and KAFKA_CREATE_TOPICS=false")
    )
    starting = asyncio.create_task(worker.runtime.start_when_kafka_answers())
    connecting = await worker.readyz()
    worker.gates.topics.set()
    await worker.until(lambda: worker.runtime._start_failure is not None)
    refused = await worker.readyz()
    worker.gates.topics.set()
    await worker.until(lambda: worker.runtime._phase == "loading")
    loading = await worker.readyz()
    worker.gates.load.set()
    await worker.until(lambda: worker.runtime.membership.in_group)
    joining = await worker.readyz()
    worker.gates.join.set()
    await worker.until(lambda: worker.runtime.membership.catching_up)
    catching_up = await worker.readyz()
    worker.gates.catch_up.set()
    await asyncio.wait_for(starting, PATIENCE_S)
    ready = await worker.readyz()

    assert connecting == (
        503,
        {
            "ready": False,
            "reason": "kafka_not_connected",
            "detail": "reaching Kafka at localhost:9092 and its topics",
        },
    )
    assert refused[0] == 503
    assert refused[1]["reason"] == "kafka_not_connected"
    assert refused[1]["detail"].endswith(
        "(last attempt: TopicSetupError: topics missing: customer-events and "
        "KAFKA_CREATE_TOPICS=false)"
    )
    assert loading[0] == 503
    assert loading[1]["reason"] == "state_topic_loading"
    assert loading[1]["detail"].startswith("reading the state topic elements-sync-state to its end")
    assert joining[0] == 503
    assert joining[1]["reason"] == "no_partitions_assigned"
    assert joining[1]["detail"].startswith(
        "waiting for the consumer group elements-sync-test to give this pod its partitions "
        "(joined it; its other members hand their events over first)"
    )
    assert catching_up == (
        503,
        {
            "ready": False,
            "reason": "state_topic_loading",
            "detail": "reading what the partitions' previous owner wrote to the state topic "
            "elements-sync-state",
        },
    )
    assert ready == (200, {"ready": True, "assignedPartitions": 2})


async def test_a_ready_worker_is_not_ready_while_the_broker_does_not_answer_or_it_stops(
    worker: Worker,
) -> None:
    for gate in (worker.gates.topics, worker.gates.load, worker.gates.join, worker.gates.catch_up):
        gate.set()
    await asyncio.wait_for(worker.runtime.start_when_kafka_answers(), PATIENCE_S)
    worker.gates.broker_answers = False
    broker_gone = await worker.readyz()
    worker.gates.broker_answers = True
    back = await worker.readyz()
    await worker.runtime.consumer.drain()
    stopping = await worker.readyz()

    assert broker_gone == (
        503,
        {"ready": False, "reason": "kafka_not_connected", "detail": "the broker does not answer"},
    )
    assert back[0] == 200
    assert stopping[0] == 503
    assert stopping[1]["reason"] == "stopping"


async def test_a_replica_the_group_gives_no_partition_is_ready_with_none(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica beyond the partition count: ready, holding none (ElementsSyncPodNotConsuming
    tells of it)."""

    async def join_with_nothing() -> None:
        await worker.runtime.consumer.partitions_revoked(set())
        await worker.runtime.consumer.partitions_assigned(set())

    monkeypatch.setattr(worker.runtime.broker, "start", join_with_nothing)
    worker.gates.topics.set()
    worker.gates.load.set()
    await asyncio.wait_for(worker.runtime.start_when_kafka_answers(), PATIENCE_S)

    assert await worker.readyz() == (200, {"ready": True, "assignedPartitions": 0})


async def test_partitions_and_memory_records_are_exported_from_the_start(worker: Worker) -> None:
    def sample(name: str, **labels: str) -> float | None:
        return worker.runtime.pipeline.metrics.registry.get_sample_value(name, labels)

    topics = worker.runtime.settings.topics
    before = {t: sample("elements_sync_assigned_partitions", topic=t) for t in topics.inputs}
    records_before = sample("elements_sync_memory_records")
    for gate in (worker.gates.topics, worker.gates.load, worker.gates.join, worker.gates.catch_up):
        gate.set()
    await asyncio.wait_for(worker.runtime.start_when_kafka_answers(), PATIENCE_S)
    worker.runtime.pipeline.memory.load([("100234", b"{}"), ("100235", b"{}")])

    assert before == dict.fromkeys(topics.inputs, 0.0)
    assert sample("elements_sync_assigned_partitions", topic=topics.backfill) == 0.0
    assert records_before == 0.0
    assert sample("elements_sync_assigned_partitions", topic="customer-events") == 1.0
    assert sample("elements_sync_assigned_partitions", topic="form-submissions") == 1.0
    assert sample("elements_sync_assigned_partitions", topic="contract-events") == 0.0
    assert sample("elements_sync_memory_records") == 2.0
