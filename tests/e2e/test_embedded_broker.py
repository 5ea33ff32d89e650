"""The embedded tansu broker speaks Kafka on a fixed loopback port and can be stopped and restarted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.sandbox import broker as embedded_broker
from app.sandbox.broker import EmbeddedBroker

pytestmark = pytest.mark.e2e


@pytest.fixture
async def broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as broker:
        yield broker


async def round_trip(bootstrap_servers: str, topic: str, value: bytes) -> bytes:
    """Produce one message and read it back from the start of the topic, without a group."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"100234")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), 10)
    finally:
        await consumer.stop()
    assert message.key == b"100234"
    assert isinstance(message.value, bytes)
    return message.value


async def test_broker_carries_a_message_from_producer_to_consumer(broker: EmbeddedBroker) -> None:
    assert broker.running
    assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"

    assert await round_trip(broker.bootstrap_servers, "greetings", b"hello") == b"hello"


async def test_restart_keeps_the_port_and_starts_empty(broker: EmbeddedBroker) -> None:
    address = broker.bootstrap_servers
    await round_trip(address, "before", b"first")

    await broker.restart()

    assert broker.running
    assert broker.bootstrap_servers == address
    assert await round_trip(address, "before", b"second") == b"second"


async def test_kill_ends_the_process_and_start_brings_it_back(broker: EmbeddedBroker) -> None:
    await broker.kill()
    assert not broker.running

    await broker.start()

    assert await round_trip(broker.bootstrap_servers, "after-kill", b"back") == b"back"


async def test_stop_is_idempotent() -> None:
    broker = EmbeddedBroker()
    await broker.stop()  # never started
    await broker.start()
    await broker.stop()
    await broker.stop()

    assert not broker.running


async def test_starting_a_running_broker_is_refused(broker: EmbeddedBroker) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        await broker.start()


async def test_start_refuses_a_port_another_broker_listens_on(broker: EmbeddedBroker) -> None:
    second = EmbeddedBroker(port=broker.port)
    try:
        with pytest.raises(RuntimeError, match="Address already in use"):
            await second.start()
        assert not second.running
    finally:
        await second.stop()


async def test_start_reports_a_broker_that_exits_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded_broker, "tansu_binary", lambda: Path("/bin/false"))
    broker = EmbeddedBroker()

    with pytest.raises(RuntimeError, match="tansu exited with code 1"):
        await broker.start()
    assert not broker.running
