"""`python -m app bench`: sync new customers through the simulators at the Elements limit.

Prints what a customer costs in Elements requests and how well the limiter uses the
allowance: the busy period runs from the first Elements request to the last.
"""

from __future__ import annotations

import json
import time

from app.logs import configure_logging
from app.sandbox.figures import table, traffic_figures
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
    succeeded = sum(r.data.status == "succeeded" for r in results)
    print(f"benchmark: {customers} new customers, Elements limit {rate} requests/s")
    print(
        table(
            [
                ("customers synced", f"{succeeded}/{customers}"),
                ("Elements requests", str(figures.requests)),
                ("requests per customer", f"{figures.requests / customers:.2f}"),
                ("429 answers", str(figures.too_many_requests)),
                ("most requests in any rolling second", str(figures.max_in_rolling_second)),
                ("busy period", f"{figures.busy_s:.1f} s"),
                ("utilisation", f"{figures.utilisation:.3f}"),
                ("wall time (incl. consumer group join)", f"{wall_s:.1f} s"),
            ]
        )
    )
    print(
        json.dumps(
            {
                "customers": customers,
                "succeeded": succeeded,
                "requests": figures.requests,
                "requests_per_customer": round(figures.requests / customers, 3),
                "http_429": figures.too_many_requests,
                "max_in_rolling_second": figures.max_in_rolling_second,
                "utilisation": round(figures.utilisation, 3),
            }
        )
    )
    ok = (
        succeeded == customers
        and figures.too_many_requests == 0
        and figures.max_in_rolling_second <= rate
    )
    return 0 if ok else 1
