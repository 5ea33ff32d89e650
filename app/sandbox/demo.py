"""`python -m app demo`: the whole pipeline on this machine, nothing installed but the project.

An embedded Kafka-compatible broker, the three API simulators and a worker, fed with
sample events: new customers (particulier and zakelijk), a contract before its customer,
a duplicate delivery, an unchanged re-sync, an address change, a contract event twice,
and a form submission through the worker's own HTTP ingress. Each result is shown as it arrives; the run
ends with a summary and exits 0 when every event succeeded.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from app.events import ResultEvent
from app.logs import configure_logging
from app.sandbox.figures import outcome_counts, table, traffic_figures
from app.sandbox.simulators.seed import seed_contract, seed_customers
from app.sandbox.world import Sandbox


def _line(done: int, total: int, result: ResultEvent) -> str:
    data = result.data
    where = f"dossier {data.dossierId}" if data.dossierId else "no dossier"
    detail = f"{len(data.operations)} writes" if data.error is None else data.error.message
    return f"  [{done:>2}/{total}] {data.status:<9} {data.eventType:<16} key {result.subject} → {where}, {detail}"


class _Progress:
    """Results as they arrive, printed, with a way to wait until a round is in."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.results: list[ResultEvent] = []
        self._arrived = asyncio.Condition()

    async def collect(self, sandbox: Sandbox, timeout_s: float) -> None:
        async with sandbox.reader(sandbox.topics.results) as consumer, asyncio.timeout(timeout_s):
            while len(self.results) < self.total:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        self.results.append(ResultEvent.model_validate_json(record.value))
                        print(_line(len(self.results), self.total, self.results[-1]), flush=True)
                async with self._arrived:
                    self._arrived.notify_all()

    async def until(self, count: int) -> None:
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.results) >= count)


class _Publisher:
    """Publishes the demo's events the way upstream does, counting them."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.published = 0

    async def customer_changed(self, dossier_number: str, event_id: str | None = None) -> None:
        await self.sandbox.publish(
            "customer.changed",
            {"dossierNumber": dossier_number},
            key=dossier_number,
            event_id=event_id,
        )
        self.published += 1

    async def contract_changed(self, contract_id: str, dossier_number: str) -> None:
        await self.sandbox.publish(
            "contract.changed",
            {"contractId": contract_id, "dossierNumber": dossier_number},
            key=dossier_number,
        )
        self.published += 1

    async def form_post(self, portal_id: str, fields: dict[str, str]) -> None:
        """Through the worker's own forms ingress, as MijnKlantportaal calls it."""
        async with httpx.AsyncClient(base_url=self.sandbox.urls["worker"]) as http:
            answer = await http.post(
                "/forms/submissions",
                headers={"X-Customer-Id": portal_id, "X-Form-Id": "frm_contactgegevens"},
                json=fields,
            )
        answer.raise_for_status()
        self.published += 1


def expected_events(customers: int) -> int:
    return customers + 8


async def _scenario(sandbox: Sandbox, customers: int, progress: _Progress) -> int:
    """Publish the sample events in two rounds; returns how many were published."""
    seeded = seed_customers(sandbox.anva, sandbox.portal, customers + 1)
    # A business's contract needs a person ANVA does not know for the sample businesses.
    late = next(c for c in reversed(seeded) if not c.is_business)
    seeded.remove(late)
    seed_contract(sandbox.anva, "AVP-0001", seeded[0].dossier_number, product="Aansprakelijkheid")
    seed_contract(sandbox.anva, "AVP-0002", late.dossier_number, product="Aansprakelijkheid")
    events = _Publisher(sandbox)

    print(f"round 1: {customers} new customers, and a contract that arrives before its customer")
    for customer in seeded:
        await events.customer_changed(customer.dossier_number)
    await events.contract_changed("AVP-0002", late.dossier_number)
    await progress.until(events.published)
    print(
        "round 2: a duplicate delivery, an unchanged re-sync, an address change, "
        "a contract (twice) and a form submission"
    )
    await events.customer_changed(seeded[0].dossier_number, "demo-duplicate")
    await events.customer_changed(seeded[0].dossier_number, "demo-duplicate")
    await events.customer_changed(seeded[1].dossier_number)
    sandbox.portal.update_customer(
        seeded[2].portal_id, address="Nieuwe Gracht 7-B", zipCode="3512 LC"
    )
    await events.customer_changed(seeded[2].dossier_number)
    await events.contract_changed("AVP-0001", seeded[0].dossier_number)
    await progress.until(events.published)
    await events.contract_changed("AVP-0001", seeded[0].dossier_number)
    await events.form_post(seeded[3].portal_id, {"email": "nieuw@example.nl", "houseNumber": "14"})
    return events.published


async def run_demo(*, customers: int) -> int:
    configure_logging("console", "WARNING")
    print(
        "elements-sync demo: starting an embedded broker, the ANVA, portal and Elements simulators"
    )
    async with Sandbox() as sandbox:
        await sandbox.start_worker()
        print(
            f"  broker {sandbox.bootstrap_servers}; Elements at {sandbox.urls['elements']} (5 requests/s)"
        )
        started = time.monotonic()
        total = expected_events(customers)
        progress = _Progress(total)
        collector = asyncio.create_task(progress.collect(sandbox, timeout_s=120 + 3 * total))
        published = await _scenario(sandbox, customers, progress)
        await collector
        results = progress.results
        elapsed_s = time.monotonic() - started
        figures = traffic_figures(sandbox.elements, sandbox.options.rate_limit)
        dossiers = sandbox.elements.dossiers()
    assert published == total
    print("\nsummary")
    counts = outcome_counts(results)
    print(
        table(
            [
                *[(f"{kind} {status}", str(n)) for (kind, status), n in sorted(counts.items())],
                ("klantdossiers in Elements", str(len(dossiers))),
                ("contracts in Elements", str(sum(len(d["contracten"]) for d in dossiers))),
                ("Elements requests", str(figures.requests)),
                ("Elements writes", str(sum(len(r.data.operations) for r in results))),
                ("429 answers", str(figures.too_many_requests)),
                ("most requests in any rolling second", str(figures.max_in_rolling_second)),
                ("elapsed", f"{elapsed_s:.1f} s"),
            ]
        )
    )
    failed = [r for r in results if r.data.status != "succeeded"]
    print("all events succeeded" if not failed else f"{len(failed)} events did not succeed")
    return 0 if not failed else 1
