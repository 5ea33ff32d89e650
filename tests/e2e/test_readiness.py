"""`/readyz` of `python -m app worker` says why it is not ready, for each reason Kafka gives:
the broker unreachable, the topics missing (KAFKA_CREATE_TOPICS=false), the consumer group not
yet giving the worker its partitions (another member holds the rebalance, handing its events
over); then 200 and a ready body. "The state topic still loading" is shown on the route with a
gated runtime (tests/unit/test_readiness.py): a load slow enough to catch is not practical here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.admin import NewTopic

from app.kafka.connection import client_options
from app.kafka.topics import service_topics
from app.sandbox.broker import EmbeddedBroker
from app.sandbox.worker_process import WorkerProcess, worker_environment
from app.sandbox.world import Sandbox
from tests.e2e.helpers import eventually

pytestmark = pytest.mark.e2e


async def readyz(worker: WorkerProcess) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=worker.url, timeout=10) as http:
        answer = await http.get("/readyz")
    body: dict[str, Any] = answer.json()
    return answer.status_code, body


async def reason_is(worker: WorkerProcess, reason: str) -> dict[str, Any]:
    """The body of the first `/readyz` answer that gives `reason`."""
    answers: list[dict[str, Any]] = []

    async def check() -> bool:
        status, body = await readyz(worker)
        answers.append(body)
        return status == 503 and body["reason"] == reason

    async with asyncio.timeout(60):
        while not await check():  # noqa: ASYNC110 - polls another process
            await asyncio.sleep(0.2)
    return answers[-1]


async def test_an_unreachable_broker_is_not_connected_until_it_answers_and_sigterm_exits_0(
    sandbox: Sandbox,
) -> None:
    late_broker = EmbeddedBroker()
    env = worker_environment(
        sandbox.settings(), KAFKA_BOOTSTRAP_SERVERS=late_broker.bootstrap_servers
    )
    worker = WorkerProcess(env)
    try:
        await worker.spawn()
        await worker.until_status("/healthz", 200, timeout_s=30)
        unreachable = await reason_is(worker, "kafka_not_connected")
        await eventually(lambda: "Kafka not ready for the worker; retrying" in worker.output())
        retried = await reason_is(worker, "kafka_not_connected")
        await late_broker.start()
        await worker.until_status("/readyz", 200, timeout_s=90)
        ready = await readyz(worker)
        exit_code = await worker.terminate()
    finally:
        await worker.close()
        await late_broker.stop()

    assert unreachable["detail"].startswith(
        f"reaching Kafka at {late_broker.bootstrap_servers} and its topics"
    )
    assert "(last attempt: " in retried["detail"]
    assert ready[0] == 200
    assert ready[1]["ready"] is True
    assert ready[1]["assignedPartitions"] > 0
    assert exit_code == 0


async def test_missing_topics_are_named_until_an_operator_creates_them(sandbox: Sandbox) -> None:
    settings = sandbox.settings()
    env = worker_environment(settings, KAFKA_CREATE_TOPICS="false")
    worker = WorkerProcess(env)
    try:
        await worker.spawn()
        await worker.until_status("/healthz", 200, timeout_s=30)
        missing = await reason_is(worker, "kafka_not_connected")
        while "last attempt" not in missing["detail"]:
            missing = await reason_is(worker, "kafka_not_connected")
        async with sandbox.admin() as admin:
            await admin.create_topics(
                [
                    NewTopic(spec.name, 4, 1, topic_configs=spec.configs)
                    for spec in service_topics(settings.topics)
                ]
            )
        await worker.until_status("/readyz", 200, timeout_s=90)
    finally:
        await worker.close()

    assert "TopicSetupError" in missing["detail"]
    assert "KAFKA_CREATE_TOPICS=false" in missing["detail"]
    assert settings.topics.customer_events in missing["detail"]


class _HoldsItsPartitions(ConsumerRebalanceListener):  # type: ignore[misc]
    """A member that, once it holds partitions, hands them over only when let: the group's
    next rebalance waits for it meanwhile, as it waits for a worker handing its events over."""

    def __init__(self) -> None:
        self.holding = asyncio.Event()
        self.let_go = asyncio.Event()

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        if revoked:
            await self.let_go.wait()

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        if assigned:
            self.holding.set()


@asynccontextmanager
async def member_holding_the_group(sandbox: Sandbox) -> AsyncIterator[_HoldsItsPartitions]:
    settings = sandbox.settings()
    listener = _HoldsItsPartitions()
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka),
        group_id=settings.kafka.group_id,
        session_timeout_ms=settings.kafka.session_timeout_ms,
        heartbeat_interval_ms=settings.kafka.heartbeat_interval_ms,
        rebalance_timeout_ms=60_000,
        enable_auto_commit=False,
    )
    consumer.subscribe(list(settings.topics.inputs), listener=listener)
    await consumer.start()
    polling = asyncio.create_task(consumer.getmany(timeout_ms=60_000))
    try:
        await asyncio.wait_for(listener.holding.wait(), 30)
        yield listener
    finally:
        listener.let_go.set()
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
        await consumer.stop()


async def test_a_worker_waiting_for_the_group_has_no_partitions_assigned_yet(
    sandbox: Sandbox,
) -> None:
    settings = sandbox.settings()
    async with sandbox.admin() as admin:
        await admin.create_topics(
            [
                NewTopic(spec.name, 4, 1, topic_configs=spec.configs)
                for spec in service_topics(settings.topics)
            ]
        )
    worker = WorkerProcess(worker_environment(settings))
    try:
        async with member_holding_the_group(sandbox) as member:
            await worker.spawn()
            await worker.until_status("/healthz", 200, timeout_s=30)
            waiting = await reason_is(worker, "no_partitions_assigned")
            member.let_go.set()
            await worker.until_status("/readyz", 200, timeout_s=60)
            ready = await readyz(worker)
    finally:
        await worker.close()

    assert waiting["detail"].startswith(
        f"waiting for the consumer group {settings.kafka.group_id} to give this pod its partitions"
    )
    assert ready[1]["ready"] is True
