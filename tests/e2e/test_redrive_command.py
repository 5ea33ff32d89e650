"""`python -m app redrive`: dead letters back to their topics, each once, through the real broker."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from app.commands.redrive import redrive
from app.sandbox.simulators.seed import sample_customer, seed_customer
from app.sandbox.worker_process import worker_environment
from app.sandbox.world import Sandbox
from tests.e2e.helpers import only_dossier, only_klant, sync

pytestmark = pytest.mark.e2e


async def redrive_process(sandbox: Sandbox, *args: str) -> tuple[int, str]:
    """`python -m app redrive` with the environment a production deployment would give it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "redrive",
        *args,
        env=worker_environment(sandbox.settings()),
        cwd=Path(__file__).parents[2],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    assert not stderr.strip(), stderr.decode()
    return process.returncode, stdout.decode()


async def test_a_failed_event_redriven_after_its_customer_appears_succeeds_and_only_once(
    sandbox: Sandbox,
) -> None:
    customer = sample_customer(0)
    await sandbox.start_worker()
    event_id = await sync(sandbox, customer.dossier_number)
    (failed,) = await sandbox.results(1)
    assert (failed.data.status, failed.data.error and failed.data.error.code) == (
        "failed",
        "customer_not_found",
    )
    (letter,) = await sandbox.read(sandbox.topics.dead_letter, 1)
    seed_customer(sandbox.anva, sandbox.portal, 0)

    tally = await redrive(sandbox.settings())

    assert dict(tally.redriven) == {"customer_not_found": 1}
    _failed_again, second = await sandbox.results(2)
    assert (second.data.eventId, second.data.status) == (event_id, "succeeded")
    assert second.data.operations, "the redriven event made the dossier"
    only_dossier(sandbox, customer.dossier_number)
    (redriven,) = [
        r
        for r in await sandbox.read(sandbox.topics.customer_events, 2)
        if dict(r.headers).get("x-redriven-from")
    ]
    assert redriven.key == customer.dossier_number.encode()
    headers = dict(redriven.headers)
    assert (
        headers["x-redriven-from"] == f"{letter.topic}/{letter.partition}/{letter.offset}".encode()
    )
    assert not [k for k in headers if k.startswith(("x-dead-letter-", "x-original-"))]
    assert headers["traceparent"], "the original's own headers travel again"

    code, output = await redrive_process(sandbox)

    assert (code, output) == (0, "redriven: 0\n")
    with pytest.raises(TimeoutError):
        await sandbox.results(3, timeout_s=2.0)


async def test_a_redrive_by_reason_leaves_the_others_to_the_next_run_and_repeats_nothing(
    sandbox: Sandbox,
) -> None:
    await sandbox.start_worker()
    await sync(sandbox, sample_customer(0).dossier_number)
    await sandbox.publish_raw(sandbox.topics.customer_events, "garbage", b"not json")
    await sandbox.read(sandbox.topics.dead_letter, 2)
    seed_customer(sandbox.anva, sandbox.portal, 0)

    code, output = await redrive_process(sandbox, "--reason", "customer_not_found")
    assert (code, output) == (0, "customer_not_found: 1\nredriven: 1\n")
    await sandbox.results(3)

    code, output = await redrive_process(sandbox)
    assert (code, output) == (0, "not_json: 1\nredriven: 1\n")


async def test_a_redriven_customer_not_found_gives_the_whole_customer_added_since(
    sandbox: Sandbox,
) -> None:
    """The failed event's lookup missed the customer in the portal too; that remembered
    miss (default PORTAL_MISS_TTL_S) must not hide the portal customer added since."""
    customer = sample_customer(0)
    await sandbox.start_worker()
    event_id = await sync(sandbox, customer.dossier_number)
    (failed,) = await sandbox.results(1)
    await sandbox.read(sandbox.topics.dead_letter, 1)
    seed_customer(sandbox.anva, sandbox.portal, 0)

    await redrive(sandbox.settings())
    _, redriven = await sandbox.results(2)

    assert failed.data.error is not None and failed.data.error.code == "customer_not_found"
    assert (redriven.data.eventId, redriven.data.status) == (event_id, "succeeded")
    dossier = only_dossier(sandbox, customer.dossier_number)
    klant = only_klant(dossier)
    assert (klant["voornaam"], klant["achternaam"]) == ("Jan", "Vries")
    adres = dossier["_embedded"]["standaardcorrespondentieadres"]
    assert (adres["straat"], adres["nummer"], adres["plaatsnaam"]) == (
        "Hoofdstraat",
        "12",
        "Amsterdam",
    )
    assert [e["naam"] for e in klant["emailadressen"]] == ["klant0@example.nl"]
    assert [p["naam"] for p in klant["telefoonnummers"]] == ["+31 6 10000000"]
