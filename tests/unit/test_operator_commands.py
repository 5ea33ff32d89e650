"""The pure parts of the operator commands: durations, redriven headers, marks, the command
line (help, exit codes, versions, reasons)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from app import __version__
from app.__main__ import EXIT_CODES, main
from app.commands.dead_letters import DeadLetter, expired_marks, mark_key
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


@pytest.mark.parametrize("command", ["plan", "redrive", "dead-letters", "results", "backfill"])
def test_each_operator_command_explains_itself(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])

    assert exited.value.code == 0
    assert f"python -m app {command}" in capsys.readouterr().out


def test_the_operator_commands_never_import_the_sandbox() -> None:
    probe = (
        "import sys, app.commands.plan, app.commands.redrive, app.commands.dead_letters, "
        "app.commands.results; "
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


COMMANDS = sorted(EXIT_CODES)
"""Every command: the parser refuses to build when one lacks its exit codes."""


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_names_its_exit_codes_in_its_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])

    assert exited.value.code == 0
    codes = [
        line.split()[0] for line in capsys.readouterr().out.split("exit codes:\n")[1].splitlines()
    ]
    assert codes[0] == "0" and "2" in codes and all(code.isdigit() for code in codes)


@pytest.mark.parametrize("argv", [["--version"], *([c, "--version"] for c in COMMANDS)])
def test_the_program_and_each_command_print_the_version(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert (exited.value.code, capsys.readouterr().out) == (0, f"elements-sync {__version__}\n")


@pytest.mark.parametrize("command", ["redrive", "dead-letters"])
def test_an_unknown_reason_exits_2_naming_the_known_ones(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--reason", "customer_not_fund"])

    assert exited.value.code == 2
    (*_, error) = capsys.readouterr().err.splitlines()
    assert "unknown reason 'customer_not_fund' (known: " in error
    assert all(code in error for code in ("customer_not_found", "not_json", "internal_error"))


def test_a_mark_whose_letter_retention_removed_is_expired_and_the_others_kept() -> None:
    marks = {0: {3, 7, 8}, 1: {2}, 5: {1}}

    expired = expired_marks("dlq", marks, {0: 7, 1: 0, 2: 0})

    assert expired == [mark_key("dlq", 0, 3), mark_key("dlq", 5, 1)]
    assert mark_key("dlq", 0, 3) == "redriven/dlq/0/3"


def letter(value: bytes, **headers: str) -> DeadLetter:
    record = ConsumerRecord(
        topic="dlq",
        partition=1,
        offset=41,
        timestamp=0,
        timestamp_type=0,
        key=b"100000",
        value=value,
        checksum=None,
        serialized_key_size=6,
        serialized_value_size=len(value),
        headers=[(k, v.encode()) for k, v in headers.items()],
    )
    return DeadLetter.of(record)


def test_a_dead_letter_names_its_event_type_when_its_bytes_are_an_event() -> None:
    event = b'{"type": "customer.changed", "id": "e1"}'
    known = letter(event, **{"x-dead-letter-reason": "customer_not_found"})
    assert (known.event_type, known.reason, known.at) == (
        "customer.changed",
        "customer_not_found",
        "dlq/1/41",
    )
    assert letter(b"not json").event_type is None
    assert letter(b"[1]").event_type is None


def test_a_cut_letter_or_one_without_its_topic_cannot_be_redriven() -> None:
    whole = {"x-original-topic": "customer-events"}
    assert letter(b"{}", **whole).why_not_redrivable is None
    cut = letter(b"{", **whole, **{"x-dead-letter-truncated": "2000000"})
    assert cut.why_not_redrivable == "value cut to fit the dead-letter topic"
    assert letter(b"{}").why_not_redrivable == "no x-original-topic header"
    assert "(cannot be redriven: value cut" in cut.line()
