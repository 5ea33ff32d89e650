"""Faults in Elements on the core without Kafka: every event accounted for, Elements clean.

Refused answers are retried, a write whose answer was lost is found again rather than
repeated, and a payload Elements rejects fails its event with Elements' own message.
"""

from __future__ import annotations

import asyncio

from app.sandbox.core import Core
from app.sandbox.figures import duplicate_entities
from app.service import Outcome


async def handle(core: Core, dossier_number: str) -> Outcome:
    """customer.changed through the outcome ladder, as the consumer hands it over."""
    return await core.handle("customer.changed", {"dossierNumber": dossier_number})


async def test_elements_5xx_answers_are_retried_until_the_event_succeeds(core: Core) -> None:
    customer = core.seed(0)
    core.elements.faults.fail_next(3, status=503)

    result = (await handle(core, customer.dossier_number)).result.data

    assert result.status == "succeeded"
    assert result.attempts > 1
    assert [r.status for r in core.data_requests()[:3]] == [503] * 3
    assert duplicate_entities(core.elements.dossiers()) == []


async def test_writes_whose_answer_was_lost_are_found_not_repeated(core: Core) -> None:
    """Each of the first six writes is applied by Elements and then answered 502."""
    customer = core.seed(0)
    core.elements.faults.apply_then_fail_next(6, status=502)

    result = (await handle(core, customer.dossier_number)).result.data

    assert result.status == "succeeded"
    assert duplicate_entities(core.elements.dossiers()) == []
    standaard = core.dossier(customer.dossier_number)["_embedded"]["standaardcorrespondentieadres"]
    assert standaard["straat"] == "Hoofdstraat"
    assert core.elements.write_count() == 6


async def test_lost_answers_at_random_leave_no_duplicate_entity(core: Core) -> None:
    customers = [core.seed(i) for i in range(5)]
    core.elements.faults.random(apply_then_502_rate=0.3, error_rate=0.1, seed=11)

    outcomes = await asyncio.gather(*(handle(core, c.dossier_number) for c in customers))

    assert [o.result.data.status for o in outcomes] == ["succeeded"] * 5
    assert duplicate_entities(core.elements.dossiers()) == []
    assert len(core.elements.dossiers()) == 5


async def test_a_payload_elements_rejects_fails_with_its_message_and_is_dead_lettered(
    core: Core,
) -> None:
    customer = core.seed(0)
    core.elements.faults.refuse_next(1, path="/kantoor", message="Kantoor is gesloten")

    outcome = await handle(core, customer.dossier_number)

    result = outcome.result.data
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == ("elements_validation", False)
    assert "/kantoor: Kantoor is gesloten" in result.error.message
    assert result.attempts == 1
    assert outcome.dead_letter_reason == "elements_validation"
