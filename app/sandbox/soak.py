"""`python -m app soak`: many events through faulty simulators; counts what must never happen.

Elements answers 10% of requests with a 5xx, applies 5% of writes and then answers 502
(the lost-response case), and answers 5% slowly. The worker and the simulator share a
raised rate limit so the run ends in minutes. Every event must get a result, Elements
must hold no entity twice, and no request may be answered 429.
"""

from __future__ import annotations

import json
import time
from collections import Counter

from app.events import ResultEvent
from app.logs import configure_logging
from app.sandbox.figures import duplicate_entities, table, traffic_figures
from app.sandbox.simulators.seed import SampleCustomer, seed_contract, seed_customers
from app.sandbox.world import Sandbox, SandboxOptions
from app.settings import RetrySettings


async def _publish_contract(sandbox: Sandbox, number: str) -> str:
    contract_id = f"K{number}"
    seed_contract(sandbox.anva, contract_id, number)
    return await sandbox.publish(
        "contract.changed", {"contractId": contract_id, "dossierNumber": number}, key=number
    )


async def _publish_customer(sandbox: Sandbox, customer: SampleCustomer) -> list[str]:
    """A customer's events: a sync, a contract, a form submission, and a re-sync.

    A business customer, whom ANVA knows no person for, has nobody to apply for a
    contract (it would fail with `contract_aanvrager_unknown`): it is synced twice instead.
    """
    number = customer.dossier_number
    sync = {"dossierNumber": number}
    return [
        await sandbox.publish("customer.changed", sync, key=number),
        await (
            sandbox.publish("customer.changed", sync, key=number)
            if customer.is_business
            else _publish_contract(sandbox, number)
        ),
        await sandbox.publish(
            "form.submitted",
            {
                "customerId": customer.portal_id,
                "formId": "frm_contact",
                "fields": {"email": f"nieuw.{number}@example.nl"},
            },
            key=customer.portal_id,
        ),
        await sandbox.publish("customer.changed", sync, key=number),
    ]


async def run_soak(*, customers: int, rate: int, seed: int) -> int:
    configure_logging("console", "ERROR")
    options = SandboxOptions(
        rate_limit=rate,
        retry=RetrySettings(initial_backoff_s=0.2, max_backoff_s=5.0, max_attempts=8),
    )
    async with Sandbox(options) as sandbox:
        seeded = seed_customers(sandbox.anva, sandbox.portal, customers)
        sandbox.elements.faults.random(
            error_rate=0.10, apply_then_502_rate=0.05, slow_rate=0.05, slow_s=1.0, seed=seed
        )
        await sandbox.start_worker()
        started = time.monotonic()
        published = [event for c in seeded for event in await _publish_customer(sandbox, c)]
        records = await sandbox.read(
            sandbox.topics.results, len(published), timeout_s=300 + 20 * len(published) / rate
        )
        wall_s = time.monotonic() - started
        results = [ResultEvent.model_validate_json(r.value) for r in records]
        figures = traffic_figures(sandbox.elements, rate)
        duplicates = duplicate_entities(sandbox.elements.dossiers())
    answered = {r.data.eventId for r in results} & set(published)
    statuses = Counter(r.data.status for r in results)
    lower_bound_s = figures.requests / rate
    print(f"soak: {len(published)} events for {customers} customers, Elements at {rate} requests/s")
    print("faults: 10% 5xx, 5% applied-then-502, 5% slow (1 s)")
    print(
        table(
            [
                ("events with a result", f"{len(answered)}/{len(published)}"),
                ("results by status", ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))),
                ("duplicate Elements entities", str(len(duplicates))),
                ("429 answers", str(figures.too_many_requests)),
                ("most requests in any rolling second", str(figures.max_in_rolling_second)),
                ("Elements requests", str(figures.requests)),
                ("wall time", f"{wall_s:.1f} s"),
                ("lower bound (requests ÷ rate)", f"{lower_bound_s:.1f} s"),
                ("wall time ÷ lower bound", f"{wall_s / lower_bound_s:.2f}"),
            ]
        )
    )
    for duplicate in duplicates[:10]:
        print(f"  duplicate: {duplicate}")
    print(
        json.dumps(
            {
                "events": len(published),
                "with_result": len(answered),
                "duplicates": len(duplicates),
                "http_429": figures.too_many_requests,
                "requests": figures.requests,
                "wall_s": round(wall_s, 1),
                "lower_bound_s": round(lower_bound_s, 1),
            }
        )
    )
    ok = len(answered) == len(published) and not duplicates and figures.too_many_requests == 0
    return 0 if ok else 1
