"""Faults in Elements, ANVA, the portal and Kafka: every event accounted for, Elements clean."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta

import httpx
import pytest

from app.sandbox.figures import duplicate_entities
from app.sandbox.simulators.recording import RecordedRequest
from app.sandbox.simulators.seed import seed_customer
from app.sandbox.world import Sandbox
from app.settings import RetrySettings
from tests.conftest import SandboxFactory
from tests.e2e.helpers import eventually, only_dossier, only_klant, sync

pytestmark = pytest.mark.e2e


async def test_an_anva_outage_pauses_intake_and_nothing_fails(sandbox: Sandbox) -> None:
    customers = [seed_customer(sandbox.anva, sandbox.portal, i) for i in range(3)]
    runtime = await sandbox.start_worker()
    sandbox.anva.faults.down(True)

    for customer in customers:
        await sync(sandbox, customer.dossier_number)
    await eventually(lambda: runtime.consumer.flow.paused_for == "upstream_outage")
    async with httpx.AsyncClient(base_url=sandbox.urls["worker"]) as http:
        ready = await http.get("/readyz")
    sandbox.anva.faults.down(False)
    results = await sandbox.results(3, timeout_s=60)

    assert ready.status_code == 200
    assert [r.data.status for r in results] == ["succeeded"] * 3
    await eventually(lambda: runtime.consumer.flow.paused_for is None)


async def test_an_outage_longer_than_the_maximum_fails_the_event_as_retryable(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox: Sandbox = await make_sandbox(
        retry=RetrySettings(max_outage_s=1.5, initial_backoff_s=0.1, max_backoff_s=0.5)
    )
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    await sandbox.start_worker()
    sandbox.portal.faults.down(True)

    await sync(sandbox, customer.dossier_number)
    (result,) = await sandbox.results(1)

    assert result.data.status == "failed"
    assert result.data.error is not None
    assert result.data.error.code == "upstream_unavailable"
    assert result.data.error.retryable is True
    assert len(await sandbox.read(sandbox.topics.dead_letter, 1)) == 1


@dataclass
class Calendar:
    day: date = date(2026, 11, 23)

    def __call__(self) -> date:
        return self.day


@pytest.mark.parametrize(
    ("ours", "elements"), [(12, None), (100_000, 12)], ids=["own-count", "elements-429"]
)
async def test_a_spent_daily_budget_pauses_intake_until_the_next_day_and_fails_nothing(
    make_sandbox: SandboxFactory, ours: int, elements: int | None
) -> None:
    calendar = Calendar()
    sandbox: Sandbox = await make_sandbox(
        daily_limit=ours, elements_daily_limit=elements, today=calendar
    )
    customers = [seed_customer(sandbox.anva, sandbox.portal, i) for i in range(2)]
    runtime = await sandbox.start_worker()

    for customer in customers:
        await sync(sandbox, customer.dossier_number)
    await eventually(lambda: runtime.consumer.flow.paused_for == "daily_budget")
    async with httpx.AsyncClient(base_url=sandbox.urls["worker"]) as http:
        ready = await http.get("/readyz")
        metrics = (await http.get("/metrics")).text
    calendar.day += timedelta(days=1)
    results = await sandbox.results(2, timeout_s=60)

    assert ready.status_code == 200
    assert 'elements_sync_intake_paused{reason="daily_budget"} 1.0' in metrics
    assert [r.data.status for r in results] == ["succeeded"] * 2
    assert duplicate_entities(sandbox.elements.dossiers()) == []


@pytest.mark.own_broker
async def test_the_worker_reconnects_after_a_broker_restart(sandbox: Sandbox) -> None:
    customers = [seed_customer(sandbox.anva, sandbox.portal, i) for i in range(2)]
    await sandbox.start_worker()
    await sync(sandbox, customers[0].dossier_number)
    await sandbox.results(1)
    assert sandbox.broker is not None

    await sandbox.broker.restart()
    await sync(sandbox, customers[1].dossier_number)
    (result,) = await sandbox.results(1, timeout_s=90)

    assert result.data.status == "succeeded"
    assert result.subject == customers[1].dossier_number


@pytest.mark.own_broker
async def test_a_result_due_while_the_broker_does_not_answer_is_published_once_it_does(
    sandbox: Sandbox,
) -> None:
    """Frozen, not killed: a killed memory-storage broker comes back without the event, and
    the rejoin after it may hand the event over — to a next owner with nothing to read."""
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    await sandbox.start_worker()
    sandbox.elements.faults.delay_next(1, 3.0)
    assert sandbox.broker is not None

    event_id = await sync(sandbox, customer.dossier_number)
    await eventually(lambda: sandbox.elements.requests)
    sandbox.broker.freeze()
    try:
        await eventually(lambda: len(sandbox.elements.dossiers()) == 1, timeout_s=60)
        await asyncio.sleep(1.0)
    finally:
        sandbox.broker.thaw()
    (result,) = await sandbox.results(1, timeout_s=90)

    assert result.data.eventId == event_id
    assert result.data.status == "succeeded"


async def test_odd_anva_accounts_stop_no_other_customer_from_syncing(sandbox: Sandbox) -> None:
    """PHP's `[]` for an empty map, `null`, numbers and nested extras: each read as meant."""
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    sandbox.anva.add_account_record({"id": 90, "lastName": "Leeg", "dossiers": []})
    sandbox.anva.add_account_record({"id": 91, "lastName": "Niets", "dossiers": None})
    sandbox.anva.add_account_record(
        {
            "id": 92,
            "firstName": "Kees",
            "lastName": "Getal",
            "dossiers": {"301": 100777},
            "groupIds": None,
            "preferences": {"language": {"code": "nl"}},
        }
    )
    sandbox.anva.add_account_record(
        {"id": 93, "firstName": {"nl": "Els"}, "lastName": "Vreemd", "dossiers": {"301": "100888"}}
    )
    await sandbox.start_worker()

    for dossier_number in (customer.dossier_number, "100777", "100888"):
        await sync(sandbox, dossier_number)
    results = {r.subject: r.data for r in await sandbox.results(3)}

    assert results[customer.dossier_number].status == "succeeded"
    assert only_klant(only_dossier(sandbox, customer.dossier_number))["achternaam"] == "Vries"
    assert results["100777"].status == "succeeded"
    assert only_klant(only_dossier(sandbox, "100777"))["achternaam"] == "Getal"
    unreadable = results["100888"]
    assert (unreadable.status, unreadable.attempts) == ("failed", 1)
    assert unreadable.error is not None
    assert unreadable.error.code == "unreadable_record"
    assert unreadable.error.message == (
        "ANVA account of dossier 100888 cannot be read (firstName: string_type)"
    )


async def test_intake_resumes_after_an_outage_that_outlasted_every_retrying_event(
    make_sandbox: SandboxFactory,
) -> None:
    """Once the event gave up only the probe asks ANVA, and its first answer ends the pause."""
    sandbox: Sandbox = await make_sandbox(
        retry=RetrySettings(
            max_outage_s=2.0, initial_backoff_s=0.1, max_backoff_s=0.5, probe_interval_s=0.2
        )
    )
    first, second = (seed_customer(sandbox.anva, sandbox.portal, i) for i in range(2))
    runtime = await sandbox.start_worker()
    sandbox.anva.faults.down(True)

    await sync(sandbox, first.dossier_number)
    await eventually(lambda: runtime.consumer.flow.paused_for == "upstream_outage", timeout_s=10)
    (failed,) = await sandbox.results(1, timeout_s=30)
    probes_seen = len(anva_probes(sandbox))
    await eventually(lambda: len(anva_probes(sandbox)) >= probes_seen + 2, timeout_s=10)
    paused_with_nothing_in_flight = runtime.consumer.flow.paused_for
    sandbox.anva.faults.down(False)
    await eventually(lambda: runtime.consumer.flow.paused_for is None, timeout_s=10)
    await sync(sandbox, second.dossier_number)
    results = await sandbox.results(2, timeout_s=30)

    assert failed.data.status == "failed"
    assert failed.data.error is not None and failed.data.error.code == "upstream_unavailable"
    assert paused_with_nothing_in_flight == "upstream_outage"
    assert [p.status for p in anva_probes(sandbox)][-1] == 200
    assert results[1].data.status == "succeeded"
    assert results[1].subject == second.dossier_number


def anva_probes(sandbox: Sandbox) -> list[RecordedRequest]:
    return [r for r in sandbox.anva.requests if r.path == "/api/organization/organizations/mine"]
