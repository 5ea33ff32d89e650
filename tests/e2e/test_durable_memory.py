"""Durable memory end to end: the state topic across restarts, forms that stand, coalescing."""

from __future__ import annotations

import httpx
import pytest

from app.sandbox.simulators.seed import seed_customer
from app.sandbox.world import Sandbox
from app.state.daily_count import DEFAULT_BLOCK
from tests.e2e.helpers import (
    ADRES_FORM,
    eventually,
    only_dossier,
    standaard_adres,
    sync,
    synced_customer,
)

pytestmark = pytest.mark.e2e


async def test_a_restarted_worker_syncs_an_unchanged_customer_without_any_elements_request(
    sandbox: Sandbox,
) -> None:
    customer = await synced_customer(sandbox)
    await sandbox.stop_worker()
    before = len(sandbox.elements.requests)

    await sandbox.start_worker()
    await sync(sandbox, customer.dossier_number)
    _, result = await sandbox.results(2)

    assert result.data.status == "succeeded"
    assert result.data.operations == []
    assert sandbox.elements.requests[before:] == []


async def test_a_form_change_survives_a_re_sync_after_a_restart(sandbox: Sandbox) -> None:
    customer = await synced_customer(sandbox)
    async with httpx.AsyncClient(base_url=sandbox.urls["worker"]) as http:
        answer = await http.post(
            "/forms/submissions",
            headers=ADRES_FORM,
            json={"street": "Kerkweg", "houseNumber": "3", "postcode": "2000 CD", "city": "Delft"},
        )
    assert answer.status_code == 202
    await sandbox.results(2)
    await sandbox.stop_worker()

    await sandbox.start_worker()
    await sync(sandbox, customer.dossier_number)
    *_, result = await sandbox.results(3)

    assert result.data.status == "succeeded"
    assert result.data.operations == []
    assert standaard_adres(sandbox, customer.dossier_number) == ("Kerkweg", "3", "Delft")


async def test_events_of_one_dossier_queued_behind_a_sync_are_served_by_one_sync(
    sandbox: Sandbox,
) -> None:
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    await sandbox.start_worker()
    sandbox.anva.faults.delay_next(1, 1.0)  # the first sync is still reading when the rest arrive
    ids = [await sync(sandbox, customer.dossier_number, event_id=f"evt-{n}") for n in range(5)]

    results = await sandbox.results(5)

    assert sorted(r.data.eventId for r in results) == ids
    assert {r.data.status for r in results} == {"succeeded"}
    synced = [r for r in results if r.data.servedBy is None]
    served = [r for r in results if r.data.servedBy is not None]
    assert len(synced) <= 2 < len(served)
    assert {r.data.servedBy for r in served} <= {r.data.eventId for r in synced}
    assert {r.data.dossierId for r in results} == {
        only_dossier(sandbox, customer.dossier_number)["id"]
    }


async def test_prefill_during_a_backlog_answers_from_memory_without_waiting_for_elements(
    sandbox: Sandbox,
) -> None:
    customer = await synced_customer(sandbox)
    backlog = [seed_customer(sandbox.anva, sandbox.portal, n) for n in range(1, 21)]
    for other in backlog:
        await sync(sandbox, other.dossier_number)
    await eventually(lambda: len(sandbox.elements.requests) > 12)
    before = len(sandbox.elements.requests)

    async with httpx.AsyncClient(base_url=sandbox.urls["worker"]) as http:
        answer = await http.get(
            "/forms/prefill", headers={**ADRES_FORM, "Accept": "application/json"}
        )

    dossier_path = f"/klantdossiers/{only_dossier(sandbox, customer.dossier_number)['id']}"
    prefill_reads = [
        r
        for r in sandbox.elements.requests[before:]
        if customer.dossier_number in r.query or dossier_path in r.path
    ]
    assert answer.status_code == 200
    assert answer.json()["street"] == "Hoofdstraat"
    assert answer.json()["email"] == "klant0@example.nl"
    assert prefill_reads == []


async def test_the_days_elements_count_survives_a_restart(sandbox: Sandbox) -> None:
    await synced_customer(sandbox)
    assert sandbox.runtime is not None
    spent = sandbox.runtime.pipeline.limiter.slots.used_today
    await sandbox.stop_worker()

    restarted = await sandbox.start_worker()

    assert spent == len(sandbox.elements.requests) > 0
    assert spent <= restarted.pipeline.limiter.slots.used_today <= spent + DEFAULT_BLOCK
    assert restarted.pipeline.limiter.remaining_today <= sandbox.options.daily_limit - spent
