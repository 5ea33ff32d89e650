"""The state topic's writer: a write Kafka does not take pauses intake until a probe of its
own finds the topic taking writes again (no event may be there to find out)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from app.kafka.state import PROBE_KEY, StateWriter
from app.settings import RetrySettings

FAST = RetrySettings(initial_backoff_s=0.001, max_backoff_s=0.01)


class Broker:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.keys: list[bytes] = []

    async def publish(self, value: bytes, *, topic: str, key: bytes, **_: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise KafkaTimeoutError()
        self.keys.append(key)


async def test_an_unwritable_state_topic_is_probed_until_it_takes_writes_again() -> None:
    broker = Broker(failures=5)  # more than one write's own attempts
    writer = StateWriter(broker, "state", FAST)  # type: ignore[arg-type]

    with pytest.raises(KafkaTimeoutError):
        await writer.write("dossier/1", b"{}")
    assert writer.unavailable
    async with asyncio.timeout(5):
        while writer.unavailable:  # noqa: ASYNC110 - the probe runs in the background
            await asyncio.sleep(0.01)

    assert broker.keys == [PROBE_KEY.encode()]
    await writer.close()
