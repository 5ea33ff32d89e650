"""Finishing a message: transient Kafka errors are retried, unpublishable forms give way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, MessageSizeTooLargeError
from faststream.kafka import KafkaBroker

from app.kafka.publisher import OutcomePublisher, header_text, kafka_error_is_transient
from app.metrics import Metrics
from app.settings import RetrySettings, TopicSettings


def test_header_text_takes_str_keys_null_values_and_bytes_that_are_not_utf8() -> None:
    headers = [
        ("content-type", b"application/json"),
        ("empty", None),
        ("odd", b"\xff"),
        (b"k", b"v"),
    ]

    assert header_text(headers) == {
        "content-type": "application/json",
        "empty": "",
        "odd": "\ufffd",
        "k": "v",
    }


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (KafkaConnectionError(), True),
        (KafkaTimeoutError(), True),
        (MessageSizeTooLargeError(), False),
        (TypeError("headers"), False),
    ],
)
def test_only_kafka_errors_other_than_too_large_are_worth_sending_again(
    error: Exception, transient: bool
) -> None:
    assert kafka_error_is_transient(error) is transient


def failing(
    times: int, error: Exception, sent: list[str], name: str
) -> Callable[[], Awaitable[Any]]:
    """A publish that raises `error` `times` times, then records `name` as sent."""
    left = [times]

    async def publish() -> None:
        if left[0] > 0:
            left[0] -= 1
            raise error
        sent.append(name)

    return publish


@pytest.fixture
def publisher() -> OutcomePublisher:
    """Built on a broker that is never connected: these tests publish through plain callables."""
    return OutcomePublisher(
        KafkaBroker("127.0.0.1:1"), TopicSettings(), Metrics(), retry=RetrySettings()
    )


def finish_failures(publisher: OutcomePublisher, step: str) -> float:
    return publisher._metrics.finish_failures.labels(step)._value.get()


@pytest.mark.looptime
async def test_a_transient_kafka_error_is_retried_until_kafka_takes_the_message(
    publisher: OutcomePublisher,
) -> None:
    sent: list[str] = []

    await publisher._first_taken(
        "result",
        [failing(3, KafkaConnectionError(), sent, "full"), failing(0, TypeError(), sent, "bare")],
    )

    assert sent == ["full"]
    assert finish_failures(publisher, "result") == 3


@pytest.mark.looptime
async def test_a_form_kafka_can_never_take_gives_way_to_the_next(
    publisher: OutcomePublisher,
) -> None:
    sent: list[str] = []

    await publisher._first_taken(
        "dead_letter",
        [
            failing(1, MessageSizeTooLargeError(), sent, "with headers"),
            failing(1, TypeError("bad header"), sent, "own headers"),
            failing(2, MessageSizeTooLargeError(), sent, "cut"),
        ],
    )

    assert sent == ["cut"]
    assert finish_failures(publisher, "dead_letter") == 4
