"""The pure parts of the operator commands: durations, redriven headers, the dry run's view."""

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
from app.pipeline.apply import AddAdres, CreateDossier, CreateKlant, SetCorrespondentieadres
from app.pipeline.dry_run import planned_operations
from app.pipeline.model import DossierState


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


def test_a_new_dossier_plan_names_the_ids_it_would_create_by_placeholder() -> None:
    steps = [
        CreateDossier({"relatienummer": "100"}),
        CreateKlant("zakelijk", {"naam": "Acme"}),
        AddAdres({"straat": "Kerkstraat"}),
        SetCorrespondentieadres(None),
    ]

    operations = [o.as_json() for o in planned_operations(steps, None)]

    new = "/api/data/klantdossiers/{new klantdossier}"
    assert operations == [
        {"method": "POST", "path": "/api/data/klantdossiers", "body": {"relatienummer": "100"}},
        {"method": "POST", "path": f"{new}/klanten/zakelijk", "body": {"naam": "Acme"}},
        {
            "method": "POST",
            "path": f"{new}/klanten/zakelijk/{{new klant}}/adressen",
            "body": {"straat": "Kerkstraat"},
        },
        {
            "method": "PATCH",
            "path": new,
            "body": {"standaardCorrespondentieadres": {"id": "{new adres}"}},
        },
    ]


def test_a_plan_on_an_existing_dossier_points_at_an_address_it_holds_by_id() -> None:
    current = DossierState(id=7, relatienummer="100", standaard_adres=None, klant=None)

    (operation,) = planned_operations([SetCorrespondentieadres(12)], current)

    assert operation.as_json() == {
        "method": "PATCH",
        "path": "/api/data/klantdossiers/7",
        "body": {"standaardCorrespondentieadres": {"id": 12}},
    }


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
