"""The backfill end to end: the command publishes every known customer, and the worker
serves the live topics first."""

from __future__ import annotations

import asyncio

import pytest

from app.commands.backfill import backfill
from app.sandbox.backfill_bench import ResultTap
from app.sandbox.simulators.seed import seed_customer, seed_customers
from app.sandbox.world import Sandbox
from tests.conftest import SandboxFactory

pytestmark = pytest.mark.e2e

LIVE = 4
BACKFILL_NEW = 26
PORTAL_ONLY_DOSSIER = "900001"
LIVE_LATENCY_BOUND_S = 4.0
"""A live phone change costs a handful of Elements requests (~1 s at 5/s) when it goes
first; queued fairly behind the backfill's requests it would take several times that."""


@pytest.mark.timeout(240)
@pytest.mark.xdist_group("timing")
async def test_live_events_during_a_backfill_finish_before_most_of_it_and_every_backfill_event_succeeds(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox: Sandbox = await make_sandbox(rate_limit=5)
    live = seed_customers(sandbox.anva, sandbox.portal, LIVE)
    await sandbox.start_worker()
    async with ResultTap(sandbox) as tap:
        synced = [
            await sandbox.publish(
                "customer.changed", {"dossierNumber": c.dossier_number}, key=c.dossier_number
            )
            for c in live
        ]
        await tap.until(lambda: set(synced) <= tap.by_event_id().keys(), timeout_s=60)
        for index in range(LIVE, LIVE + BACKFILL_NEW):
            seed_customer(sandbox.anva, sandbox.portal, index)
        sandbox.portal.add_customer(
            customer_id="cst_portal_only",
            company_name="Alleen Portaal B.V.",
            address="Stationsweg 3",
            zip_code="3511 AB",
            city="Utrecht",
            primary_email="info@alleenportaal.nl",
            phone="+31 30 1234567",
            integration_id=PORTAL_ONLY_DOSSIER,
        )
        sandbox.portal.add_customer(
            customer_id="cst_other_integration",
            company_name="Elders B.V.",
            address="Dorpsstraat 44-2",
            zip_code="8011 AB",
            city="Zwolle",
            primary_email="info@elders.nl",
            phone="+31 38 1234567",
            integration="other",
            integration_id="900002",
        )

        count = await backfill(sandbox.settings())

        assert (count.anva, count.portal, count.published) == (
            LIVE + BACKFILL_NEW,
            LIVE + BACKFILL_NEW + 1,
            LIVE + BACKFILL_NEW + 1,
        )
        backfill_start = len(tap.arrived)
        finished_at_publish: dict[str, set[str]] = {}
        published_at: dict[str, float] = {}
        for index, customer in enumerate(live):
            await asyncio.sleep(2)
            done = {r.data.eventId for _, r in tap.arrived[backfill_start:]}
            sandbox.portal.update_customer(customer.portal_id, phone=f"+31 6 2000000{index}")
            event_id = await sandbox.publish(
                "customer.changed",
                {"dossierNumber": customer.dossier_number},
                key=customer.dossier_number,
            )
            published_at[event_id] = asyncio.get_running_loop().time()
            finished_at_publish[event_id] = {str(i) for i in done if i}
        await tap.until(
            lambda: len(tap.arrived) >= backfill_start + count.published + LIVE, timeout_s=180
        )

    results = tap.by_event_id()
    position = {r.data.eventId: n for n, (_, r) in enumerate(tap.arrived)}
    backfill_ids = {
        r.data.eventId or ""
        for _, r in tap.arrived[backfill_start:]
        if r.data.eventId not in finished_at_publish
    }
    assert len(backfill_ids) == count.published
    assert {results[i][1].data.status for i in backfill_ids} == {"succeeded"}
    keys = {results[i][1].subject for i in backfill_ids}
    assert keys == {c.dossier_number for c in live} | {
        str(100_000 + i) for i in range(LIVE, LIVE + BACKFILL_NEW)
    } | {PORTAL_ONLY_DOSSIER}
    for live_id, finished_before in finished_at_publish.items():
        live_done_at = position[live_id]
        assert results[live_id][1].data.status == "succeeded"
        # The dossier's backfill event may be running as the portal changes: then it writes
        # the new phone, and the live event finds nothing left to write.
        dossier = results[live_id][1].subject
        same_dossier = [i for i in backfill_ids if results[i][1].subject == dossier]
        assert [
            i
            for i in (live_id, *same_dossier)
            if any(o.path.endswith("/telefoonnummers") for o in results[i][1].data.operations)
        ] in ([live_id], same_dossier), "the live event's phone change was written once"
        latency_s = results[live_id][0] - published_at[live_id]
        assert latency_s < LIVE_LATENCY_BOUND_S, f"live event {live_id} took {latency_s:.1f} s"
        unfinished = backfill_ids - finished_before
        after_live = {i for i in unfinished if position[i] > live_done_at}
        assert len(after_live) >= 0.8 * len(unfinished), (
            f"live event {live_id}: only {len(after_live)} of the {len(unfinished)} backfill "
            "events unfinished at its publication finished after it"
        )
