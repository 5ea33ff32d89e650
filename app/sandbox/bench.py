"""`python -m app bench`: sync new customers through the simulators at the Elements limit.

Prints what a customer costs in Elements requests and how well the limiter uses the
allowance: the busy period runs from the first Elements request to the last.
"""

from __future__ import annotations

import time

from app.logs import configure_logging
from app.sandbox.figures import report_backlog, traffic_figures
from app.sandbox.simulators.seed import seed_customers
from app.sandbox.world import Sandbox, SandboxOptions


async def run_bench(*, customers: int, rate: int) -> int:
    configure_logging("console", "WARNING")
    async with Sandbox(SandboxOptions(rate_limit=rate)) as sandbox:
        seeded = seed_customers(sandbox.anva, sandbox.portal, customers)
        await sandbox.start_worker()
        started = time.monotonic()
        for customer in seeded:
            await sandbox.publish(
                "customer.changed",
                {"dossierNumber": customer.dossier_number},
                key=customer.dossier_number,
            )
        results = await sandbox.results(customers, timeout_s=60 + 20 * customers / rate)
        wall_s = time.monotonic() - started
        figures = traffic_figures(sandbox.elements, rate)
    return report_backlog(
        f"benchmark: {customers} new customers, Elements limit {rate} requests/s",
        results=results,
        figures=figures,
        rate=rate,
        rows=[("wall time (incl. consumer group join)", f"{wall_s:.1f} s")],
        figures_json={},
    )
