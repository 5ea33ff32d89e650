"""The outcome ladder (SyncService) on the core without Kafka: one outcome per message.

Succeeded, failed (permanent, retries exhausted, a bug of ours) or rejected; the result
lists every Elements write the event made, by any attempt, failed ones included.
"""

from __future__ import annotations

import pytest

from app.sandbox.core import Core
from app.service import Outcome

DOSSIER_WRITES = [
    ("POST", "klantdossiers"),
    ("POST", "particulier"),
    ("POST", "adressen"),
    ("PATCH", "klantdossier"),
    ("POST", "emailadressen"),
    ("POST", "telefoonnummers"),
]
"""A new particulier customer's writes, by the last part of their path (PATCH: the dossier)."""


def written(outcome: Outcome) -> list[tuple[str, str]]:
    """The result's operations as (method, what), the dossier PATCH as "klantdossier"."""
    return [
        (o.method, "klantdossier" if o.method == "PATCH" else o.path.rsplit("/", 1)[-1])
        for o in outcome.result.data.operations
    ]


async def test_a_synced_event_succeeds_and_reports_each_write_elements_answered(
    core: Core,
) -> None:
    customer = core.seed(0)

    outcome = await core.handle("customer.changed", {"dossierNumber": customer.dossier_number})

    data = outcome.result.data
    assert (data.status, data.error, data.attempts, data.ignoredFields) == (
        "succeeded",
        None,
        1,
        None,
    )
    assert data.dossierId == core.dossier(customer.dossier_number)["id"]
    assert [(o.method, o.path, o.status) for o in data.operations] == [
        (r.method, r.path, r.status) for r in core.writes()
    ]
    assert written(outcome) == DOSSIER_WRITES
    assert data.operations[0].resourceId == data.dossierId
    assert outcome.dead_letter_reason is None


async def test_a_permanent_error_fails_the_event_at_once_and_dead_letters_it(
    core: Core,
) -> None:
    outcome = await core.handle("customer.changed", {"dossierNumber": "999999"})

    data = outcome.result.data
    assert data.status == "failed"
    assert data.error is not None
    assert (data.error.code, data.error.retryable) == ("customer_not_found", False)
    assert data.error.message == "dossier 999999 is unknown to ANVA and the portal"
    assert (data.attempts, data.operations, data.dossierId) == (1, [], None)
    assert outcome.dead_letter_reason == "customer_not_found"
    assert core.writes() == []


async def test_a_retryable_error_fails_the_event_once_the_attempts_run_out(core: Core) -> None:
    customer = core.seed(0)
    core.elements.faults.fail_next(100, status=429)

    outcome = await core.handle("customer.changed", {"dossierNumber": customer.dossier_number})

    data = outcome.result.data
    assert data.status == "failed"
    assert data.error is not None
    assert (data.error.code, data.error.retryable) == ("rate_limited", True)
    assert data.attempts == 3
    assert [r.status for r in core.data_requests()] == [429] * 3
    assert outcome.dead_letter_reason == "rate_limited"


async def test_an_unusable_message_is_rejected_and_dead_lettered(core: Core) -> None:
    outcome = await core.service.handle(b"{not json", key="100000")

    data = outcome.result.data
    assert (data.status, data.eventId, data.attempts) == ("rejected", None, 1)
    assert data.error is not None
    assert (data.error.code, data.error.retryable) == ("not_json", False)
    assert outcome.dead_letter_reason == "not_json"
    assert core.elements.requests == []


async def test_an_exception_outside_the_error_hierarchy_fails_the_event_as_internal_error(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = core.seed(0)
    monkeypatch.setattr(core.context, "portal", None)  # broken wiring: a bug of ours

    outcome = await core.handle("customer.changed", {"dossierNumber": customer.dossier_number})

    data = outcome.result.data
    assert data.status == "failed"
    assert data.error is not None
    assert (data.error.code, data.error.message) == (
        "internal_error",
        "internal error: AttributeError",
    )
    assert (data.error.retryable, data.attempts) == (False, 1)
    assert outcome.dead_letter_reason == "internal_error"


async def test_writes_before_a_bug_are_reported_with_the_internal_error(core: Core) -> None:
    customer = core.seed(0)
    core.fail_write(3, LookupError("a bug while writing the address"))

    outcome = await core.handle("customer.changed", {"dossierNumber": customer.dossier_number})

    data = outcome.result.data
    assert data.error is not None
    assert (data.status, data.error.code, data.error.message) == (
        "failed",
        "internal_error",
        "internal error: LookupError",
    )
    assert written(outcome) == DOSSIER_WRITES[:2]
    assert outcome.dead_letter_reason == "internal_error"


async def test_writes_of_a_failed_attempt_are_reported_with_those_of_the_attempt_that_succeeded(
    core: Core,
) -> None:
    customer = core.seed(0)
    core.fail_write(4, 503)

    outcome = await core.handle("customer.changed", {"dossierNumber": customer.dossier_number})

    data = outcome.result.data
    assert (data.status, data.attempts) == ("succeeded", 2)
    # attempt 1: dossier, klant, address, then the PATCH is answered 503; attempt 2 reads
    # them back and makes the rest: the PATCH to the address it found, e-mail, phone
    assert [r.status for r in core.writes()] == [201, 201, 201, 503, 200, 201, 201]
    assert written(outcome) == DOSSIER_WRITES
    assert all(o.status in (200, 201) for o in data.operations)
    klant = core.klant(customer.dossier_number)
    assert len(klant["adressen"]) == len(klant["emailadressen"]) == 1


async def test_writes_before_a_permanent_failure_are_reported(core: Core) -> None:
    customer = core.seed(0)
    core.fail_write(5, 400)

    outcome = await core.handle("customer.changed", {"dossierNumber": customer.dossier_number})

    data = outcome.result.data
    assert data.error is not None
    assert (data.status, data.error.code, data.attempts) == ("failed", "upstream_rejected", 1)
    assert written(outcome) == DOSSIER_WRITES[:4]
    assert outcome.dead_letter_reason == "upstream_rejected"


async def test_writes_of_every_attempt_are_reported_when_the_retries_run_out(core: Core) -> None:
    customer = core.seed(0)
    core.fail_write(4, 429)  # attempt 1: dossier, klant, address; the PATCH refused
    core.fail_write(6, 429)  # attempt 2: the PATCH; the e-mail refused
    core.fail_write(7, 429)  # attempt 3: the e-mail refused again

    outcome = await core.handle("customer.changed", {"dossierNumber": customer.dossier_number})

    data = outcome.result.data
    assert data.error is not None
    assert (data.status, data.error.code, data.attempts) == ("failed", "rate_limited", 3)
    assert written(outcome) == DOSSIER_WRITES[:4]
    assert [r.status for r in core.writes()] == [201, 201, 201, 429, 200, 429, 429]
