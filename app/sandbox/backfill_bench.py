"""`python -m app bench-backfill`: what a backfill costs the live events.

Two runs on fresh sandboxes at the same Elements rate: live `customer.changed` events
(each a changed phone number, so each makes a write) published every few seconds while a
backfill of new customers runs, and the same live events on an idle worker. Each live
event's latency runs from its publication to its result on the result topic.

With `--replicas N` the worker is N `python -m app worker` processes in one group, sharing
the limit and the dossier leases through one redis-server: the backfill's events spread
over all of them, so a live event competes with other replicas' backfill events too.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

from app.commands.backfill import backfill
from app.events import ResultEvent
from app.logs import configure_logging
from app.sandbox.background import InBackground
from app.sandbox.figures import table
from app.sandbox.redis_server import RedisServer
from app.sandbox.simulators.seed import SampleCustomer, seed_customer, seed_customers
from app.sandbox.worker_process import workers_sharing_redis
from app.sandbox.world import Sandbox, SandboxOptions


@dataclass
class ResultTap(InBackground):
    """Reads the result topic in the background and notes when each result arrived."""

    sandbox: Sandbox
    arrived: list[tuple[float, ResultEvent]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        async with self.sandbox.reader(self.sandbox.topics.results) as consumer:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                for records in batch.values():
                    self.arrived += [
                        (loop.time(), ResultEvent.model_validate_json(r.value)) for r in records
                    ]
                if batch:
                    self._changed.set()

    def by_event_id(self) -> dict[str, tuple[float, ResultEvent]]:
        return {r.data.eventId: (t, r) for t, r in self.arrived if r.data.eventId}

    async def until(self, condition: Callable[[], bool], *, timeout_s: float) -> None:
        """Wait until `condition()` holds after a result arrived (raises TimeoutError)."""
        async with asyncio.timeout(timeout_s):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


@dataclass(frozen=True)
class RunFigures:
    live_latencies_s: list[float]
    backfill_published: int = 0
    backfill_succeeded: int = 0
    backfill_s: float = 0.0


async def _sync_first(sandbox: Sandbox, tap: ResultTap, customers: list[SampleCustomer]) -> None:
    ids = [
        await sandbox.publish(
            "customer.changed", {"dossierNumber": c.dossier_number}, key=c.dossier_number
        )
        for c in customers
    ]
    await tap.until(lambda: set(ids) <= tap.by_event_id().keys(), timeout_s=120)


async def _live_events(
    sandbox: Sandbox, live: list[SampleCustomer], *, count: int, every_s: float
) -> dict[str, float]:
    """Publish `count` live changes, one every `every_s`; the loop time of each, by event id."""
    loop = asyncio.get_running_loop()
    published: dict[str, float] = {}
    for index in range(count):
        customer = live[index % len(live)]
        sandbox.portal.update_customer(customer.portal_id, phone=f"+31 6 2{index:07d}")
        event_id = await sandbox.publish(
            "customer.changed",
            {"dossierNumber": customer.dossier_number},
            key=customer.dossier_number,
        )
        published[event_id] = loop.time()
        await asyncio.sleep(every_s)
    return published


LIVE_CUSTOMERS = 4
"""Already synced before the run; the live events change their phone numbers in turn."""


@asynccontextmanager
async def _workers(sandbox: Sandbox, replicas: int) -> AsyncIterator[None]:
    """The worker in this process, or `replicas` worker processes sharing one Redis."""
    if replicas == 1:
        await sandbox.start_worker()
        yield
        return
    with RedisServer() as redis:
        async with workers_sharing_redis(
            sandbox.settings(), redis.url, replicas, LOG_LEVEL="WARNING"
        ):
            yield


async def _run(
    *, backfill_customers: int, live_count: int, every_s: float, rate: int, replicas: int
) -> RunFigures:
    """One run; with `backfill_customers`, a backfill of that many (the live ones included)."""
    async with Sandbox(SandboxOptions(rate_limit=rate)) as sandbox:
        live = seed_customers(sandbox.anva, sandbox.portal, LIVE_CUSTOMERS)
        async with _workers(sandbox, replicas), ResultTap(sandbox) as tap:
            await _sync_first(sandbox, tap, live)
            before = len(tap.arrived)
            started = asyncio.get_running_loop().time()
            backfilled = 0
            if backfill_customers:
                for index in range(LIVE_CUSTOMERS, max(backfill_customers, LIVE_CUSTOMERS)):
                    seed_customer(sandbox.anva, sandbox.portal, index)
                backfilled = (await backfill(sandbox.settings())).published
                await tap.until(lambda: len(tap.arrived) > before, timeout_s=60)
            published = await _live_events(sandbox, live, count=live_count, every_s=every_s)
            expected = live_count + backfilled
            await tap.until(
                lambda: len(tap.arrived) - before >= expected,
                timeout_s=120 + 10 * expected / rate,
            )
            finished = tap.by_event_id()
            backfill_results = [
                r for _, r in tap.arrived[before:] if r.data.eventId not in published
            ]
            return RunFigures(
                live_latencies_s=[finished[i][0] - t for i, t in published.items()],
                backfill_published=backfilled,
                backfill_succeeded=sum(r.data.status == "succeeded" for r in backfill_results),
                backfill_s=max(t for t, _ in tap.arrived) - started,
            )


def _latency(latencies: list[float]) -> str:
    return f"median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s"


async def run_backfill_bench(
    *, customers: int, live: int, every_s: float, rate: int, replicas: int
) -> int:
    configure_logging("console", "WARNING")
    runs = partial(_run, live_count=live, every_s=every_s, rate=rate, replicas=replicas)
    busy = await runs(backfill_customers=customers)
    idle = await runs(backfill_customers=0)
    workers = "one worker" if replicas == 1 else f"{replicas} worker processes sharing Redis"
    print(
        f"backfill benchmark: {customers} customers at {rate} Elements requests/s, "
        f"a live event every {every_s:g} s ({live} in all), {workers}"
    )
    print(
        table(
            [
                ("live latency during the backfill", _latency(busy.live_latencies_s)),
                ("live latency on an idle worker", _latency(idle.live_latencies_s)),
                ("backfill succeeded", f"{busy.backfill_succeeded}/{busy.backfill_published}"),
                ("backfill duration", f"{busy.backfill_s:.1f} s"),
            ]
        )
    )
    print(
        json.dumps(
            {
                "customers": customers,
                "replicas": replicas,
                "live_events": live,
                "live_during_backfill_s": [round(x, 3) for x in busy.live_latencies_s],
                "live_idle_s": [round(x, 3) for x in idle.live_latencies_s],
                "backfill_s": round(busy.backfill_s, 1),
            }
        )
    )
    return 0 if busy.backfill_succeeded == busy.backfill_published else 1
