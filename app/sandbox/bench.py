"""`python -m app bench`: sync new customers through the simulators at the Elements limit.

Prints what a customer costs in Elements requests and how well the limiter uses the
allowance: the busy period runs from the first Elements request to the last. While the
backlog keeps the limiter saturated, a portal form asks `/forms/prefill` for the first
customer (synced before the backlog) twice a second: how long a customer waits for it is
printed too.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx

from app.logs import configure_logging
from app.sandbox.figures import report_backlog, traffic_figures
from app.sandbox.simulators.seed import seed_customers
from app.sandbox.world import Sandbox, SandboxOptions


async def run_bench(*, customers: int, rate: int) -> int:
    configure_logging("console", "WARNING")
    async with Sandbox(SandboxOptions(rate_limit=rate)) as sandbox:
        known, *seeded = seed_customers(sandbox.anva, sandbox.portal, customers + 1)
        await sandbox.start_worker()
        await sandbox.publish(
            "customer.changed", {"dossierNumber": known.dossier_number}, key=known.dossier_number
        )
        await sandbox.results(1)
        started = time.monotonic()
        for customer in seeded:
            await sandbox.publish(
                "customer.changed",
                {"dossierNumber": customer.dossier_number},
                key=customer.dossier_number,
            )
        prefill = asyncio.create_task(_prefill_latencies(sandbox.urls["worker"], known.portal_id))
        every = await sandbox.results(customers + 1, timeout_s=60 + 20 * customers / rate)
        results = [r for r in every if r.subject != known.dossier_number]
        wall_s = time.monotonic() - started
        prefill.cancel()
        latencies = await prefill
        figures = traffic_figures(sandbox.elements, rate)
    return report_backlog(
        f"benchmark: {customers} new customers, Elements limit {rate} requests/s",
        results=results,
        figures=figures,
        rate=rate,
        rows=[
            ("wall time (incl. consumer group join)", f"{wall_s:.1f} s"),
            (
                "prefill during the backlog",
                f"{len(latencies)} answers, median {statistics.median(latencies):.3f} s, "
                f"max {max(latencies):.3f} s",
            ),
        ],
        figures_json={"prefill_max_s": round(max(latencies), 3)},
    )


async def _prefill_latencies(worker_url: str, portal_customer_id: str) -> list[float]:
    """Seconds each prefill took, asked every half second until cancelled."""
    latencies: list[float] = []
    headers = {
        "X-Customer-Id": portal_customer_id,
        "X-Form-Id": "frm_bench",
        "Accept": "application/json",
    }
    async with httpx.AsyncClient(base_url=worker_url, timeout=30) as http:
        try:
            while True:
                asked = time.monotonic()
                answer = await http.get("/forms/prefill", headers=headers)
                answer.raise_for_status()
                latencies.append(time.monotonic() - asked)
                await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            return latencies
