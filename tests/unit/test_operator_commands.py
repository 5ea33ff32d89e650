"""The pure parts of the operator commands: durations, redriven headers."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from app.__main__ import main
from app.commands.redrive import redriven_headers
from app.commands.results import parse_duration


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("90s", timedelta(seconds=90)),
    ],
)
def test_a_duration_is_a_number_and_a_unit(text: str, period: timedelta) -> None:
    assert parse_duration(text) == period


@pytest.mark.parametrize("text", ["", "2", "h", "2w", "-1h", "1.5h"])
def test_a_duration_without_a_known_unit_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_a_redriven_message_keeps_its_own_headers_and_drops_the_dead_lettering_ones() -> None:
    headers = [
        ("traceparent", b"00-abc-01"),
        ("x-dead-letter-reason", b"customer_not_found"),
        ("x-dead-letter-message", b"unknown"),
        ("x-original-topic", b"customer-events"),
        ("x-original-partition", b"2"),
        ("x-original-offset", b"7"),
        ("x-event-id", b"e1"),
    ]

    kept = redriven_headers(headers, TopicPartition("sync-dead-letter", 1), 41)

    assert kept == [("traceparent", b"00-abc-01"), ("x-redriven-from", b"sync-dead-letter/1/41")]


@pytest.mark.parametrize("command", ["plan", "redrive", "results"])
def test_each_operator_command_explains_itself(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])

    assert exited.value.code == 0
    assert f"python -m app {command}" in capsys.readouterr().out


def test_the_operator_commands_never_import_the_sandbox() -> None:
    probe = (
        "import sys, app.commands.plan, app.commands.redrive, app.commands.results; "
        "print(any(m.startswith('app.sandbox') for m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert done.stdout.strip() == "False"
