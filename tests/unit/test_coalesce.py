"""Coalescing: an event served by a sync of its dossier that started after it arrived."""

from __future__ import annotations

import asyncio

from app.events import input_event_bytes
from app.pipeline.coalesce import RecentSyncs, ServedBy
from app.sandbox.core import Core
from app.service import Outcome
from app.ticket import Ticket


def test_a_sync_serves_only_events_that_arrived_before_its_reads_started() -> None:
    recent = RecentSyncs()
    recent.note("100", ServedBy("evt-1", 5526, fresh_after=10.0))

    assert recent.serving("100", arrived=9.5, hint=None) == ServedBy("evt-1", 5526, 10.0)
    assert recent.serving("100", arrived=10.5, hint=None) is None
    assert recent.serving("200", arrived=9.5, hint=None) is None


def test_only_the_most_recent_dossiers_are_kept() -> None:
    recent = RecentSyncs(keep=2)
    for number in ("1", "2", "3"):
        recent.note(number, ServedBy(f"evt-{number}", 1, fresh_after=10.0))

    assert recent.serving("1", arrived=0.0, hint=None) is None
    assert recent.serving("3", arrived=0.0, hint=None) is not None


def test_a_sync_serves_only_events_that_ask_with_the_same_portal_customer_id_hint() -> None:
    recent = RecentSyncs()
    recent.note("100", ServedBy("evt-1", 5526, fresh_after=10.0, hint="cst_a"))
    recent.note("200", ServedBy("evt-2", 5527, fresh_after=10.0, hint=None))

    assert recent.serving("100", arrived=9.5, hint="cst_a") is not None
    assert recent.serving("100", arrived=9.5, hint="cst_b") is None
    assert recent.serving("100", arrived=9.5, hint=None) is None
    assert recent.serving("200", arrived=9.5, hint=None) is not None
    assert recent.serving("200", arrived=9.5, hint="cst_a") is None


async def test_an_event_queued_behind_a_sync_of_its_dossier_gets_its_own_result_from_it(
    core: Core,
) -> None:
    customer = core.seed(0)
    data = {"dossierNumber": customer.dossier_number}
    loop = asyncio.get_running_loop()
    queued_at = loop.time()
    ticket = Ticket(loop.time())
    first = await core.service.handle(
        input_event_bytes("customer.changed", data, event_id="evt-1"),
        arrived=queued_at,
        ticket=ticket,
    )
    anva_seen = len(core.anva.requests)

    second = await core.service.handle(
        input_event_bytes("customer.changed", data, event_id="evt-2"),
        arrived=queued_at,
        ticket=ticket,
    )
    anva_after_served = len(core.anva.requests)
    later = await core.service.handle(
        input_event_bytes("customer.changed", data, event_id="evt-3"),
        arrived=loop.time(),
        ticket=Ticket(loop.time()),
    )

    assert first.result.data.status == second.result.data.status == "succeeded"
    assert second.result.data.eventId == "evt-2"
    assert second.result.data.servedBy == "evt-1"
    assert second.result.data.dossierId == first.result.data.dossierId
    assert second.result.data.operations == []
    assert anva_after_served == anva_seen, "a served event reads nothing upstream"
    assert later.result.data.servedBy is None
    assert len(core.anva.requests) > anva_seen, "an event that arrived later is synced itself"


async def test_an_event_with_another_hint_than_the_serving_sync_syncs_itself(core: Core) -> None:
    customer = core.seed(0)
    loop = asyncio.get_running_loop()
    queued_at = loop.time()
    ticket = Ticket(loop.time())

    async def handle(event_id: str, hint: str | None) -> Outcome:
        data = {"dossierNumber": customer.dossier_number}
        if hint is not None:
            data["portalCustomerId"] = hint
        return await core.service.handle(
            input_event_bytes("customer.changed", data, event_id=event_id),
            arrived=queued_at,
            ticket=ticket,
        )

    await handle("evt-1", None)
    portal_seen = len(core.portal.requests)
    hinted = await handle("evt-2", customer.portal_id)
    portal_after_hinted = len(core.portal.requests)
    same_hint = await handle("evt-3", customer.portal_id)
    no_hint = await handle("evt-4", None)

    assert hinted.result.data.status == "succeeded"
    assert hinted.result.data.servedBy is None, "evt-1 read without the hint evt-2 names"
    assert portal_after_hinted > portal_seen, "evt-2 read the portal itself"
    assert same_hint.result.data.servedBy == "evt-2"
    assert no_hint.result.data.servedBy is None, "the latest sync followed a hint evt-4 lacks"
    assert len(core.portal.requests) > portal_after_hinted
