"""The worker as its own process: SIGKILL mid-backlog, SIGTERM drain, and secrets that never leak."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest

from app.sandbox.figures import duplicate_entities
from app.sandbox.simulators.seed import SampleCustomer, seed_customer
from app.sandbox.worker_process import WorkerProcess, worker_environment
from app.sandbox.world import CLOUDEVENTS_PRODUCER_HEADERS, Sandbox
from tests.conftest import SandboxFactory
from tests.e2e.helpers import eventually, sync

pytestmark = pytest.mark.e2e


async def results_by_event(sandbox: Sandbox, wanted: set[str], *, timeout_s: float) -> Counter[str]:
    """Read results until every wanted event id has one; counts results per event id."""
    seen: Counter[str] = Counter()
    async with sandbox.reader(sandbox.topics.results) as consumer, asyncio.timeout(timeout_s):
        while not wanted <= set(seen):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                seen.update(json.loads(r.value)["data"]["eventId"] for r in records)
    return seen


async def sync_all(sandbox: Sandbox, customers: list[SampleCustomer]) -> set[str]:
    """Publish a customer.changed for each; returns the event ids."""
    return {await sync(sandbox, customer.dossier_number) for customer in customers}


async def test_after_sigkill_mid_backlog_a_restarted_worker_gives_every_event_a_result(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox: Sandbox = await make_sandbox(rate_limit=20)
    customers = [seed_customer(sandbox.anva, sandbox.portal, i) for i in range(12)]
    env = worker_environment(sandbox.settings())

    async with WorkerProcess(env) as first:
        published = await sync_all(sandbox, customers)
        await eventually(lambda: len(sandbox.elements.dossiers()) >= 3, timeout_s=60)
        await first.kill()
    async with WorkerProcess(env):
        seen = await results_by_event(sandbox, published, timeout_s=120)

    assert published <= set(seen)
    assert duplicate_entities(sandbox.elements.dossiers()) == []
    assert len(sandbox.elements.dossiers()) == len(customers)


async def test_sigterm_drains_in_flight_work_and_exits_zero_within_the_deadline(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox: Sandbox = await make_sandbox(rate_limit=20)
    customers = [seed_customer(sandbox.anva, sandbox.portal, i) for i in range(8)]
    env = worker_environment(sandbox.settings())

    async with WorkerProcess(env) as first:
        published = await sync_all(sandbox, customers)
        await eventually(lambda: sandbox.elements.requests, timeout_s=60)
        exit_code = await first.terminate(timeout_s=20)
    async with WorkerProcess(env):
        seen = await results_by_event(sandbox, published, timeout_s=120)

    assert exit_code == 0
    assert set(seen) == published
    assert max(seen.values()) == 1, "an event drained by the first worker was redone"
    assert duplicate_entities(sandbox.elements.dossiers()) == []


SECRETS = {
    "anva": "anva-SECRET-7f3a91",
    "portal": "portal-SECRET-2b8c44",
    "elements": "elements-SECRET-9d1e07",
}
FORMS_SECRET = "forms-SECRET-55aa21"


async def test_no_secret_appears_in_logs_results_or_dead_letters(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox: Sandbox = await make_sandbox(rate_limit=20, secrets=SECRETS, token_ttl_s=2)
    customers = [seed_customer(sandbox.anva, sandbox.portal, i) for i in range(3)]
    env = worker_environment(sandbox.settings(), FORMS_SHARED_SECRET=FORMS_SECRET)

    async with WorkerProcess(env) as worker:
        events = {await sync(sandbox, c.dossier_number) for c in customers}
        events.add(await sync(sandbox, "999999"))
        await sandbox.publish_raw(
            sandbox.topics.customer_events, "bad", b"not json", headers=CLOUDEVENTS_PRODUCER_HEADERS
        )
        # Ready comes before the group has assigned the partitions: the token the first
        # events get must be older than its lifetime when the next one needs it.
        await results_by_event(sandbox, set(events), timeout_s=60)
        sandbox.elements.faults.fail_next(2, status=503)
        await asyncio.sleep(2.5)
        events.add(await sync(sandbox, customers[0].dossier_number))
        async with httpx.AsyncClient(base_url=worker.url) as http:
            form = {"X-Customer-Id": customers[1].portal_id, "X-Form-Id": "frm_contact"}
            accepted = await http.post(
                "/forms/submissions",
                headers={**form, "X-Forms-Secret": FORMS_SECRET},
                json={"email": "nieuw@example.nl"},
            )
            refused = await http.post(
                "/forms/submissions", headers={**form, "X-Forms-Secret": "wrong"}, json={}
            )
            events.add(accepted.json()["eventId"])
            metrics = (await http.get("/metrics")).text
        await results_by_event(sandbox, events, timeout_s=60)
        logs = worker.output()

    outputs = [logs, metrics, refused.text, accepted.text]
    for topic in (
        sandbox.topics.results,
        sandbox.topics.dead_letter,
        sandbox.topics.form_submissions,
    ):
        async with sandbox.reader(topic) as consumer:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                outputs += [repr(r.value) + repr(r.headers) for r in records]
    secrets = [*SECRETS.values(), FORMS_SECRET, *sandbox.elements.issued_tokens()]
    assert refused.status_code == 401
    assert len(sandbox.elements.issued_tokens()) >= 4, "the token was never renewed"
    assert "event synced" in logs
    leaks = [s for s in secrets for text in outputs if s in text]
    assert leaks == []
