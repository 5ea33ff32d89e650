"""`python -m app plan`: the dry run, through the simulators, writes nothing."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from app.commands.plan import EXIT_WOULD_FAIL, planned, run_plan
from app.sandbox.simulators.seed import seed_customer
from app.sandbox.worker_process import worker_environment
from app.sandbox.world import Sandbox
from tests.e2e.helpers import only_dossier, synced_customer

pytestmark = pytest.mark.e2e

TOKEN_PATH = "/oauth/access_token"


def writes_since(sandbox: Sandbox, start: int) -> list[str]:
    """Requests other than reads and the token request that reached Elements after `start`."""
    return [
        f"{r.method} {r.path}"
        for r in sandbox.elements.requests[start:]
        if r.method != "GET" and not (r.method == "POST" and r.path == TOKEN_PATH)
    ]


async def test_plan_of_a_moved_customer_holds_the_new_address_and_the_patch_and_writes_nothing(
    sandbox: Sandbox,
) -> None:
    customer = await synced_customer(sandbox)
    await sandbox.stop_worker()
    dossier = only_dossier(sandbox, customer.dossier_number)
    sandbox.portal.update_customer(
        customer.portal_id, address="Stationsweg 3", zipCode="3511 AB", city="Utrecht"
    )
    start = len(sandbox.elements.requests)

    plan = await planned(sandbox.settings(), customer.dossier_number)

    klant_id = only_klant_id(dossier)
    klant_path = f"/api/data/klantdossiers/{dossier['id']}/klanten/particulier/{klant_id}"
    assert plan == {
        "dossierNumber": customer.dossier_number,
        "operations": [
            {
                "method": "POST",
                "path": f"{klant_path}/adressen",
                "body": {
                    "straat": "Stationsweg",
                    "nummer": "3",
                    "postcode": "3511AB",
                    "plaatsnaam": "Utrecht",
                    "land": "NL",
                    "categorie": "Standaard",
                    "type": "Correspondentieadres",
                },
            },
            {
                "method": "PATCH",
                "path": f"/api/data/klantdossiers/{dossier['id']}",
                "body": {"standaardCorrespondentieadres": {"id": "{new adres}"}},
            },
        ],
    }
    assert len(sandbox.elements.requests) > start, "the plan read Elements"
    assert writes_since(sandbox, start) == []


def only_klant_id(dossier: dict[str, object]) -> int:
    klanten = dossier["klanten"]
    assert isinstance(klanten, dict)
    (klant,) = klanten["particulier"]
    return int(klant["id"])


async def test_plan_of_a_new_customer_starts_with_the_klantdossier_post_as_a_process(
    sandbox: Sandbox,
) -> None:
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    env = worker_environment(sandbox.settings())
    start = len(sandbox.elements.requests)

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "plan",
        customer.dossier_number,
        env=env,
        cwd=Path(__file__).parents[2],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 0, stderr.decode()
    plan = json.loads(stdout)
    new = "/api/data/klantdossiers/{new klantdossier}"
    klant = f"{new}/klanten/particulier/{{new klant}}"
    assert [(o["method"], o["path"]) for o in plan["operations"]] == [
        ("POST", "/api/data/klantdossiers"),
        ("POST", f"{new}/klanten/particulier?rol=eerste-persoon"),
        ("POST", f"{klant}/adressen"),
        ("PATCH", new),
        ("POST", f"{klant}/emailadressen"),
        ("POST", f"{klant}/telefoonnummers"),
    ]
    assert plan["operations"][0]["body"]["relatienummer"] == customer.dossier_number
    assert plan["operations"][1]["body"] == {
        "voornaam": "Jan",
        "tussenvoegsel": "de",
        "achternaam": "Vries",
    }
    assert writes_since(sandbox, start) == []
    assert sandbox.elements.dossier_by_relatienummer(customer.dossier_number) is None


async def test_plan_of_a_customer_unknown_upstream_exits_3_with_the_reason_on_stderr(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_plan(sandbox.settings(), "999999")

    captured = capsys.readouterr()
    assert code == EXIT_WOULD_FAIL
    assert captured.out == ""
    assert captured.err.startswith("customer_not_found: ")
    assert "999999" in captured.err
