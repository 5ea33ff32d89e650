"""An event whose partition is handed over stops at its next step boundary: before an Elements
request (also while it waits for a slot), before a dossier record, in a backoff or a wait for
the budget — never in the middle of a request, and never with a result."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any, TypeVar

import httpx
import pytest

from app.clients.limiter import ElementsLimiter
from app.errors import UpstreamUnavailable
from app.event_stop import EventStop, HandedOver
from app.retry import retrying
from app.sandbox.core import Core
from app.settings import RetrySettings
from app.state.memory import DossierMemory
from app.state.record import DossierRecord
from app.ticket import Ticket
from tests.unit.test_limiter import LIVE, fake_clock

T = TypeVar("T")


def for_event(
    handover: EventStop, work: Callable[[Ticket], Coroutine[Any, Any, T]]
) -> asyncio.Task[T]:
    """Run `work` in a task of its own on a ticket with `handover`, as the consumer runs each
    event."""
    arrived = asyncio.get_running_loop().time()
    return asyncio.create_task(work(Ticket(arrived, handover=handover)))


def test_a_checkpoint_raises_only_once_the_stop_was_requested() -> None:
    handover = EventStop("customer-events-0")
    handover.checkpoint()

    handover.request()

    with pytest.raises(HandedOver):
        handover.checkpoint()


def test_handed_over_passes_every_except_exception() -> None:
    """It ends the event as a cancellation does: no ladder catches it on the way out."""
    assert not issubclass(HandedOver, Exception)


@fake_clock
async def test_a_backoff_ends_when_the_event_is_handed_over() -> None:
    handover = EventStop("p")
    sleeping = for_event(handover, lambda ticket: ticket.pause(3600))
    await asyncio.sleep(1)

    handover.request()

    with pytest.raises(HandedOver):
        await asyncio.wait_for(sleeping, 1)


@fake_clock
async def test_the_retry_ladder_backs_off_no_longer_once_the_event_is_handed_over() -> None:
    handover = EventStop("p")
    attempts = 0
    policy = RetrySettings(max_outage_s=3600, initial_backoff_s=600, max_backoff_s=600)

    async def always_unreachable(ticket: Ticket) -> None:
        nonlocal attempts
        async for attempt in retrying(policy, ticket):
            with attempt:
                attempts += 1
                raise UpstreamUnavailable("down")

    retrying_task = for_event(handover, always_unreachable)
    await asyncio.sleep(1)
    handover.request()

    with pytest.raises(HandedOver):
        await asyncio.wait_for(retrying_task, 1)
    assert attempts == 1


def limiter(**kwargs: Any) -> ElementsLimiter:
    options: dict[str, Any] = {"rate_per_s": 1, "margin_s": 0.0, "daily_limit": 10_000}
    return ElementsLimiter(**{**options, **kwargs})


@fake_clock
async def test_an_acquire_waiting_for_a_slot_ends_on_the_handover_and_counts_nothing() -> None:
    gate = limiter()
    await gate.acquire(LIVE)  # the slot of this second is taken
    handover = EventStop("p")
    waiting = for_event(handover, gate.acquire)
    await asyncio.sleep(0.3)
    assert not waiting.done()

    handover.request()

    with pytest.raises(HandedOver):
        await asyncio.wait_for(waiting, 0.01)
    assert gate.slots.used_today == 1
    loop = asyncio.get_running_loop()
    before = loop.time()
    await gate.acquire(LIVE)
    assert loop.time() - before <= 0.7 + 1e-6, "the next slot is not held back by the stopped one"


@fake_clock
async def test_a_granted_slot_is_used_and_the_next_acquire_stops() -> None:
    gate = limiter()
    handover = EventStop("p")

    async def two_requests(ticket: Ticket) -> None:
        await gate.acquire(ticket)
        handover.request()  # comes while the first request is in flight
        await gate.acquire(ticket)

    with pytest.raises(HandedOver):
        await for_event(handover, two_requests)
    assert gate.slots.used_today == 1


@fake_clock
async def test_the_wait_for_the_daily_budget_ends_on_the_handover() -> None:
    gate = limiter(daily_limit=1, today=lambda: date(2025, 3, 1), budget_poll_s=60)
    await gate.acquire(LIVE)
    handover = EventStop("p")
    waiting = for_event(handover, gate.wait_for_budget)
    await asyncio.sleep(120)

    handover.request()

    with pytest.raises(HandedOver):
        await asyncio.wait_for(waiting, 1)


async def test_an_elements_request_in_flight_is_answered_and_the_next_one_is_never_sent(
    core: Core,
) -> None:
    elements = core.context.elements
    await elements.probe()  # the token is granted before the event
    sent = len(core.elements.requests)
    core.elements.faults.delay_next(1, 0.3)
    handover = EventStop("p")
    answered: list[int] = []

    async def two_searches(ticket: Ticket) -> None:
        on_ticket = elements.for_event(ticket)
        answered.append(len(await on_ticket.find_dossiers(relatienummer="100000")))
        await on_ticket.find_dossiers(relatienummer="100001")

    searching = for_event(handover, two_searches)
    await asyncio.sleep(0.1)
    handover.request()

    with pytest.raises(HandedOver):
        await searching
    assert answered == [0], "the request in flight was answered"
    requests = core.elements.requests[sent:]
    assert [(r.method, r.path, r.status) for r in requests] == [
        ("GET", "/api/data/klantdossiers", 200)
    ]


async def test_a_handed_over_event_writes_no_record_ahead_of_writes_but_records_what_was_done() -> (
    None
):
    saved: list[str] = []

    async def save(dossier_number: str, value: bytes) -> None:
        saved.append(dossier_number)

    memory = DossierMemory(max_age_s=86_400, save=save)
    handover = EventStop("p")
    handover.request()

    with pytest.raises(HandedOver):
        await for_event(
            handover,
            lambda ticket: memory.keep_before_writes(
                DossierRecord(dossier_number="1", dossier_id=2), ticket
            ),
        )
    await for_event(
        handover, lambda _: memory.remember(DossierRecord(dossier_number="2", dossier_id=3))
    )

    assert saved == ["2"], "what Elements acknowledged is recorded, whatever the handover"


async def test_an_event_stopped_between_two_writes_leaves_its_dossier_record_unread(
    core: Core,
) -> None:
    """The form's writes: the record is marked unread before the first, the second is never
    sent, no result is decided, and nothing is remembered after the stop."""
    customer = core.seed(0)
    await core.handle("customer.changed", {"dossierNumber": customer.dossier_number})
    memory = core.context.memory
    assert memory.trusted(customer.dossier_number) is not None
    handover = EventStop("p")
    writes_before = len(core.writes())

    async def stop_at_the_first_write(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.startswith("/api/data"):
            handover.request()

    core.context.elements._http.event_hooks["request"].append(stop_at_the_first_write)
    fields = {"email": "nieuw@example.nl", "phone": "0612345678"}

    with pytest.raises(HandedOver):
        await for_event(
            handover,
            lambda ticket: core.handle(
                "form.submitted",
                {"customerId": customer.portal_id, "formId": "frm_contact", "fields": fields},
                ticket,
            ),
        )

    assert [w.path.rsplit("/", 1)[-1] for w in core.writes()[writes_before:]] == ["emailadressen"]
    assert memory.trusted(customer.dossier_number) is None, "marked unread before the writes"
    record = memory.get(customer.dossier_number)
    assert record is not None and record.read_at <= 0
