"""Two `python -m app worker` processes contend for the same dossiers' leases in Redis: a
replica whose events wait for a lease another replica holds stops at once on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from pydantic import SecretStr

from app.sandbox.figures import duplicate_entities
from app.sandbox.simulators.seed import seed_customer
from app.sandbox.worker_process import WorkerProcess, worker_environment
from app.sandbox.world import Sandbox
from app.settings import KafkaSettings
from tests.conftest import SandboxFactory
from tests.e2e.helpers import split_pairs, sync
from tests.e2e.test_worker_process import results_by_event

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

HANDOVER_TIMEOUT_S = KafkaSettings.model_fields["handover_timeout_s"].default
ELEMENTS_LATENCY_S = 1.5
"""Every Elements answer held this long: a new customer's sync holds its lease ~10 s."""


def waits_for_a_lease(worker: WorkerProcess) -> bool:
    """Whether the worker logged an event that makes no progress waiting for a lease."""
    for line in worker.output().splitlines():
        if line.startswith("{"):
            fields = json.loads(line)
            if fields.get("event") == "event makes no progress" and "the lease on dossier" in str(
                fields.get("waiting_for")
            ):
                return True
    return False


async def test_sigterm_of_a_replica_whose_events_wait_for_leases_exits_0_within_the_handover(
    make_sandbox: SandboxFactory, redis_url: str
) -> None:
    """Each customer's sync goes to one replica, its form to the other (split_pairs): the
    replica that took the form second waits for the lease the first holds while Elements
    answers slowly. SIGTERM of a waiting replica ends its waits; it exits 0 well within the
    handover timeout, and the other replica gives every event its result."""
    sandbox: Sandbox = await make_sandbox()
    customers = [seed_customer(sandbox.anva, sandbox.portal, n) for n in split_pairs(4)]
    settings = sandbox.settings()
    settings.elements.limiter_redis_url = SecretStr(redis_url)
    workers = [
        WorkerProcess(worker_environment(settings, LOG_LEVEL="INFO", LOG_STALL_AFTER_S="1"))
        for _ in range(2)
    ]
    try:
        await asyncio.gather(*(w.start() for w in workers))
        sandbox.elements.faults.delay_next(10_000, ELEMENTS_LATENCY_S)
        published = {await sync(sandbox, c.dossier_number) for c in customers}
        await asyncio.sleep(1.0)  # the syncs take their leases first
        for n, customer in enumerate(customers):
            form = {
                "customerId": customer.portal_id,
                "formId": "frm_contact",
                "fields": {"phone": f"+31 6 3000000{n}"},
            }
            published.add(await sandbox.publish("form.submitted", form, key=customer.portal_id))
        async with asyncio.timeout(30):
            while not any(waits_for_a_lease(w) for w in workers):  # noqa: ASYNC110 - another process's log
                await asyncio.sleep(0.2)
        waiting = next(w for w in workers if waits_for_a_lease(w))
        started = time.monotonic()
        exit_code = await waiting.terminate(timeout_s=HANDOVER_TIMEOUT_S + 10)
        stopped_s = time.monotonic() - started
        sandbox.elements.faults.clear()

        seen = await results_by_event(sandbox, published, timeout_s=90)
    finally:
        for worker in workers:
            await worker.close()

    assert exit_code == 0
    assert stopped_s < HANDOVER_TIMEOUT_S / 2, f"SIGTERM took {stopped_s:.1f} s"
    assert published <= set(seen)
    assert duplicate_entities(sandbox.elements.dossiers()) == []
