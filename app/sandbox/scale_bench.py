"""`python -m app bench-scale`: what the worker costs upstream at office scale.

Seeds 10,000 customers (6,667 ANVA accounts, 10,500 portal customers of which 500 belong to
another integration), lifts the Elements limit, and runs the worker as its own process
(`python -m app worker`, configured by environment), so its peak memory can be read. After a
warm-up event (consumer group joined, first portal index built), two phases: "new" adds 300
customers upstream (appended to ANVA and the portal listing) and publishes a
`customer.changed` for each; "unchanged" publishes the same 300 again. Requests are counted
from what the simulators received; the portal's background index reads come from the
worker's own metric (`elements_sync_portal_page_reads{purpose="refresh"}`), as they look
like any other page read on the wire. `--worker-source DIR` runs another checkout's worker,
to measure the code before a change.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.logs import configure_logging
from app.sandbox.backfill_bench import ResultTap
from app.sandbox.figures import table
from app.sandbox.simulators.seed import SampleCustomer, seed_customer, seed_office
from app.sandbox.worker_process import WorkerProcess, worker_environment
from app.sandbox.world import Sandbox, SandboxOptions

CUSTOMERS = 10_000
OTHER_INTEGRATIONS = 500
NEW_CUSTOMERS = 300
RATE_LIMIT = 1_000
DAILY_LIMIT = 10_000_000
ACCOUNT_LISTING = "/api/account/mine"
REFRESH_READS = "elements_sync_portal_page_reads_total"
PHASE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Requests:
    """What the simulators received (and the worker read in the background) so far."""

    anva: int
    anva_listings: int
    portal: int
    portal_refresh: int
    elements: int
    elements_429: int

    def __sub__(self, other: Requests) -> Requests:
        return Requests(**{k: v - getattr(other, k) for k, v in asdict(self).items()})


@dataclass(frozen=True)
class Phase:
    name: str
    events: int
    succeeded: int
    seconds: float
    requests: Requests
    failures: Counter[str]
    """Error codes of the results that did not succeed."""

    def per_event(self, count: int) -> float:
        return count / self.events

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def portal_per_event(self) -> float:
        """Page reads on the events' path: all portal requests but the background index."""
        return self.per_event(self.requests.portal - self.requests.portal_refresh)

    def rows(self) -> list[tuple[str, str]]:
        r = self.requests
        return [
            ("results succeeded", f"{self.succeeded}/{self.events}"),
            ("events per second", f"{self.events_per_s:.1f}"),
            ("ANVA requests per event", f"{self.per_event(r.anva):.2f}"),
            ("ANVA /account/mine listings per event", f"{self.per_event(r.anva_listings):.3f}"),
            ("portal requests per event", f"{self.portal_per_event:.2f}"),
            ("background portal index reads", str(r.portal_refresh)),
            ("Elements requests per event", f"{self.per_event(r.elements):.2f}"),
            ("Elements 429 answers", str(r.elements_429)),
            *[(f"failed: {code}", str(n)) for code, n in self.failures.most_common()],
        ]

    def as_json(self) -> dict[str, object]:
        r = self.requests
        return {
            "events": self.events,
            "succeeded": self.succeeded,
            "seconds": round(self.seconds, 2),
            "events_per_s": round(self.events_per_s, 1),
            "anva_per_event": round(self.per_event(r.anva), 3),
            "anva_listings_per_event": round(self.per_event(r.anva_listings), 3),
            "portal_per_event": round(self.portal_per_event, 3),
            "portal_refresh_reads": r.portal_refresh,
            "elements_per_event": round(self.per_event(r.elements), 3),
            "elements_429": r.elements_429,
            "failures": dict(self.failures),
        }


async def _refresh_reads(worker: WorkerProcess) -> int:
    """The worker's background portal reads so far (0 for a worker without the metric)."""
    async with httpx.AsyncClient(base_url=worker.url) as http:
        text = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == REFRESH_READS and sample.labels.get("purpose") == "refresh":
                return int(sample.value)
    return 0


async def _requests(sandbox: Sandbox, worker: WorkerProcess) -> Requests:
    anva, portal, elements = sandbox.anva.requests, sandbox.portal.requests, sandbox.elements
    return Requests(
        anva=len(anva),
        anva_listings=sum(r.path == ACCOUNT_LISTING for r in anva),
        portal=len(portal),
        portal_refresh=await _refresh_reads(worker),
        elements=len(elements.requests),
        elements_429=elements.count_status(429),
    )


async def _phase(
    name: str,
    sandbox: Sandbox,
    worker: WorkerProcess,
    tap: ResultTap,
    customers: list[SampleCustomer],
) -> Phase:
    """Publish a customer.changed per customer at once; done when every result arrived."""
    loop = asyncio.get_running_loop()
    before = await _requests(sandbox, worker)
    started = loop.time()
    ids = set(
        await asyncio.gather(
            *(
                sandbox.publish(
                    "customer.changed", {"dossierNumber": c.dossier_number}, key=c.dossier_number
                )
                for c in customers
            )
        )
    )
    await tap.until(lambda: ids <= tap.by_event_id().keys(), timeout_s=PHASE_TIMEOUT_S)
    finished = [tap.by_event_id()[i] for i in ids]
    spent = await _requests(sandbox, worker) - before
    return Phase(
        name=name,
        events=len(ids),
        succeeded=sum(result.data.status == "succeeded" for _, result in finished),
        seconds=max(at for at, _ in finished) - started,
        requests=spent,
        failures=Counter(
            result.data.error.code if result.data.error else result.data.status
            for _, result in finished
            if result.data.status != "succeeded"
        ),
    )


@dataclass(frozen=True)
class Run:
    warm_up: Phase
    phases: list[Phase]
    peak_rss_bytes: int


async def _run(
    *, source: Path | None, max_in_flight: int | None, log: Callable[[str], None]
) -> Run:
    options = SandboxOptions(rate_limit=RATE_LIMIT, daily_limit=DAILY_LIMIT)
    async with Sandbox(options) as sandbox:
        seeded = seed_office(
            sandbox.anva, sandbox.portal, CUSTOMERS, other_integrations=OTHER_INTEGRATIONS
        )
        extra = {"LOG_LEVEL": "WARNING"}
        if max_in_flight is not None:
            extra["KAFKA_MAX_IN_FLIGHT"] = str(max_in_flight)
        env = worker_environment(sandbox.settings(), **extra)
        log(f"seeded {CUSTOMERS} customers; starting the worker")
        async with WorkerProcess(env, source=source) as worker, ResultTap(sandbox) as tap:
            warm_up = await _phase("warm-up", sandbox, worker, tap, [seeded[CUSTOMERS // 2]])
            log(f"warm-up done in {warm_up.seconds:.1f} s")
            new = [
                seed_customer(sandbox.anva, sandbox.portal, index)
                for index in range(CUSTOMERS, CUSTOMERS + NEW_CUSTOMERS)
            ]
            phases = [await _phase("new", sandbox, worker, tap, new)]
            log(f"new: {phases[0].events_per_s:.1f} events/s")
            phases.append(await _phase("unchanged", sandbox, worker, tap, new))
            peak_rss_bytes = worker.peak_rss_bytes()
            await worker.terminate()
            return Run(warm_up, phases, peak_rss_bytes)


async def run_scale_bench(*, worker_source: Path | None, max_in_flight: int | None) -> int:
    configure_logging("console", "WARNING")
    run = await _run(
        source=worker_source,
        max_in_flight=max_in_flight,
        log=lambda line: print(f"bench-scale: {line}", flush=True),
    )
    rss_mb = run.peak_rss_bytes / 2**20
    print(
        f"scale benchmark: {CUSTOMERS} customers upstream ({OTHER_INTEGRATIONS} portal customers "
        f"of other integrations), Elements limit {RATE_LIMIT}/s, worker from "
        f"{worker_source or 'this checkout'}"
    )
    for phase in run.phases:
        print(f"phase {phase.name}: {phase.events} customer.changed events")
        print(table(phase.rows()))
    print(
        table(
            [
                ("warm-up (group join, first portal index)", f"{run.warm_up.seconds:.1f} s"),
                ("warm-up background portal reads", str(run.warm_up.requests.portal_refresh)),
                ("worker peak RSS", f"{rss_mb:.0f} MB"),
            ]
        )
    )
    print(
        json.dumps(
            {
                "customers": CUSTOMERS,
                "worker_source": str(worker_source) if worker_source else None,
                "max_in_flight": max_in_flight,
                "warm_up": run.warm_up.as_json(),
                **{phase.name: phase.as_json() for phase in run.phases},
                "peak_rss_mb": round(rss_mb, 1),
            }
        )
    )
    return 0 if all(p.succeeded == p.events for p in [run.warm_up, *run.phases]) else 1
