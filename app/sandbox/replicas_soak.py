"""`python -m app soak --replicas N`: worker processes that come and go, under Elements faults.

N `python -m app worker` processes in one consumer group share the Elements limit and the
dossier leases through one redis-server; the broker and the simulators run in this
process. Elements answers 5% of requests with a 500 and applies 5% of writes and then
answers 502 (a lost answer). Every dossier gets customer and contract events, on their two
topics, in three waves; while each wave is worked on, one worker is disrupted: the first
gets SIGTERM and comes back, the second is SIGKILLed and comes back, the third gets SIGTERM
for good. Every partition thus changes owner at least five times while events are in
flight. At the end the remaining workers get SIGTERM too.

A run passes when every input has a result (a second one only when a SIGKILL came between
the two: the killed worker had published it and not yet committed), Elements holds nothing
twice, no request was answered 429, and every SIGTERM ended in exit 0 within the handover
timeout. `--runs`
repeats the whole run on fresh processes; a failing run's worker logs are kept on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from app.logs import configure_logging
from app.sandbox.figures import duplicate_entities, table, traffic_figures
from app.sandbox.redis_server import RedisServer
from app.sandbox.simulators.seed import SampleCustomer, seed_contract, seed_customer
from app.sandbox.worker_process import WorkerProcess, worker_environment
from app.sandbox.world import Sandbox, SandboxOptions
from app.settings import KafkaSettings

HANDOVER_TIMEOUT_S = KafkaSettings.model_fields["handover_timeout_s"].default
RESULTS_TIMEOUT_S = 300.0
WORKER_SETTINGS = {
    "RETRY_INITIAL_BACKOFF_S": "0.2",
    "RETRY_MAX_BACKOFF_S": "2",
    "KAFKA_SESSION_TIMEOUT_MS": "3000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
    "LOG_LEVEL": "INFO",
}
"""Production's handover timeout; retries and the group's session shortened so a run ends
in about a minute."""


@dataclass
class Stop:
    how: str
    exit_code: int | None
    seconds: float
    at: float = field(default_factory=time.time)
    """When it was sent (epoch seconds, like a Kafka record's timestamp)."""

    @property
    def clean(self) -> bool:
        return self.how == "SIGKILL" or (self.exit_code == 0 and self.seconds < HANDOVER_TIMEOUT_S)

    def __str__(self) -> str:
        if self.how == "SIGKILL":
            return "SIGKILL"
        return f"SIGTERM exit {self.exit_code} in {self.seconds:.1f} s"


@dataclass
class RunOutcome:
    events: int
    answered: int
    answered_twice: int
    """Besides those whose results came before and after a SIGKILL: the killed worker had
    published the first and not yet committed its offset."""
    answered_twice_over_a_kill: int
    duplicates: list[str]
    http_429: int
    requests: int
    stops: list[Stop]
    wall_s: float
    logs: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.answered == self.events
            and not self.answered_twice
            and not self.duplicates
            and self.http_429 == 0
            and all(stop.clean for stop in self.stops)
        )

    def figures(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "events": self.events,
            "with_result": self.answered,
            "more_than_one_result": self.answered_twice,
            "more_than_one_result_over_a_sigkill": self.answered_twice_over_a_kill,
            "duplicates": len(self.duplicates),
            "http_429": self.http_429,
            "requests": self.requests,
            "stops": [str(stop) for stop in self.stops],
            "wall_s": round(self.wall_s, 1),
        }


class ResultLog:
    """Every result on the results topic, per event id, read as the run goes."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.statuses: dict[str, list[str]] = defaultdict(list)
        self.published_at: dict[str, list[float]] = defaultdict(list)
        """Per event id, when each of its results was published (the record's timestamp, set
        by the worker's producer): a reader sees a result later than that."""

    async def follow(self) -> None:
        async with self._sandbox.reader(self._sandbox.topics.results) as consumer:
            while True:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        data = json.loads(record.value)["data"]
                        self.statuses[data["eventId"]].append(data["status"])
                        self.published_at[data["eventId"]].append(record.timestamp / 1000)

    async def until(self, events: list[str], count: int, *, timeout_s: float) -> None:
        """Wait until `count` of `events` have a result (TimeoutError when they do not)."""
        async with asyncio.timeout(timeout_s):
            while sum(1 for e in events if e in self.statuses) < count:  # noqa: ASYNC110 - fed by follow()
                await asyncio.sleep(0.1)


class Churn:
    """The workers of one run, started, stopped and restarted as the run goes."""

    def __init__(self, sandbox: Sandbox, redis_url: str, replicas: int) -> None:
        settings = sandbox.settings()
        settings.elements.limiter_redis_url = SecretStr(redis_url)
        self._settings = settings
        self.workers = [self._new_worker() for _ in range(replicas)]
        self.retired: list[WorkerProcess] = []
        self.stops: list[Stop] = []

    def _new_worker(self) -> WorkerProcess:
        return WorkerProcess(worker_environment(self._settings, **WORKER_SETTINGS))

    async def start(self) -> None:
        await asyncio.gather(*(worker.start(ready_timeout_s=60) for worker in self.workers))

    async def terminate(self, index: int, *, restart: bool) -> None:
        worker = self.workers[index]
        started, sent_at = time.monotonic(), time.time()
        try:
            code: int | None = await worker.terminate(timeout_s=HANDOVER_TIMEOUT_S + 30)
        except TimeoutError:
            code = None
        self.stops.append(Stop("SIGTERM", code, time.monotonic() - started, at=sent_at))
        await self._replace(index, restart=restart)

    async def kill(self, index: int) -> None:
        sent_at = time.time()
        await self.workers[index].kill()
        self.stops.append(Stop("SIGKILL", None, 0.0, at=sent_at))
        await self._replace(index, restart=True)

    async def _replace(self, index: int, *, restart: bool) -> None:
        self.retired.append(self.workers[index])
        if restart:
            self.workers[index] = self._new_worker()
            await self.workers[index].start(ready_timeout_s=60)

    async def stop_all(self) -> None:
        for index, worker in enumerate(self.workers):
            if worker not in self.retired:
                await self.terminate(index, restart=False)

    def keep_logs(self, directory: Path) -> list[Path]:
        paths = []
        for n, worker in enumerate(self.retired):
            path = directory / f"worker-{n}.log"
            path.write_text(worker.output())
            paths.append(path)
        return paths

    async def __aenter__(self) -> Churn:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for worker in {id(w): w for w in [*self.workers, *self.retired]}.values():
            await worker.close()


def _people(sandbox: Sandbox, dossiers: int) -> list[tuple[int, SampleCustomer]]:
    """`dossiers` persons (a business has nobody to apply for a contract), seeded upstream."""
    indexes = [n for n in range(dossiers * 2) if n % 3 != 2][:dossiers]
    return [(n, seed_customer(sandbox.anva, sandbox.portal, n)) for n in indexes]


async def _wave(sandbox: Sandbox, people: list[tuple[int, SampleCustomer]], wave: int) -> list[str]:
    """Wave 0 syncs every customer and a first contract; wave 1 changes both upstream;
    wave 2 adds a second contract and asks for both. A dossier's customer and contract
    events go to their own topics, so different workers may take them at once."""
    events = []
    for index, customer in people:
        number = customer.dossier_number
        first, second = f"K{number}-1", f"K{number}-2"
        contracts = [first]
        if wave == 0:
            seed_contract(sandbox.anva, first, number)
        elif wave == 1:
            sandbox.anva.update_account(index + 1, email=f"gewijzigd{index}@example.nl")
            sandbox.anva.update_contract(
                first, metadata={"omschrijving": "Inboedelverzekering", "startDate": "2026-01-01"}
            )
        else:
            seed_contract(sandbox.anva, second, number)
            contracts = [second, first]
        events.append(
            await sandbox.publish("customer.changed", {"dossierNumber": number}, key=number)
        )
        for contract in contracts:
            events.append(
                await sandbox.publish(
                    "contract.changed",
                    {"contractId": contract, "dossierNumber": number},
                    key=number,
                )
            )
    return events


async def _one_run(*, replicas: int, dossiers: int, rate: int, seed: int) -> RunOutcome:
    with RedisServer() as redis:
        async with Sandbox(SandboxOptions(rate_limit=rate)) as sandbox:
            people = _people(sandbox, dossiers)
            sandbox.elements.faults.random(error_rate=0.05, apply_then_502_rate=0.05, seed=seed)
            async with Churn(sandbox, redis.url, replicas) as churn:
                results = ResultLog(sandbox)
                following = asyncio.create_task(results.follow())
                try:
                    published, wall_s = await _churned(sandbox, churn, people, results)
                finally:
                    following.cancel()
                    await asyncio.gather(following, return_exceptions=True)
                figures = traffic_figures(sandbox.elements, rate)
                twice = [e for e in published if len(results.published_at.get(e, [])) > 1]
                kills = [stop.at for stop in churn.stops if stop.how == "SIGKILL"]
                over_a_kill = [
                    e
                    for e in twice
                    if any(
                        min(results.published_at[e]) <= k <= max(results.published_at[e])
                        for k in kills
                    )
                ]
                outcome = RunOutcome(
                    events=len(published),
                    answered=sum(1 for e in published if e in results.statuses),
                    answered_twice=len(twice) - len(over_a_kill),
                    answered_twice_over_a_kill=len(over_a_kill),
                    duplicates=duplicate_entities(sandbox.elements.dossiers()),
                    http_429=figures.too_many_requests,
                    requests=figures.requests,
                    stops=churn.stops,
                    wall_s=wall_s,
                )
                if not outcome.ok:
                    directory = Path(tempfile.mkdtemp(prefix="soak-"))
                    outcome.logs = [*churn.keep_logs(directory), _keep_requests(sandbox, directory)]
    return outcome


async def _churned(
    sandbox: Sandbox, churn: Churn, people: list[tuple[int, SampleCustomer]], results: ResultLog
) -> tuple[list[str], float]:
    """Publish the waves, disrupting one worker during each; the events and the wall time
    until all had a result (or the wait gave up), then SIGTERM for the workers left."""
    replicas = len(churn.workers)
    disruptions: list[Callable[[], Awaitable[None]]] = [
        lambda: churn.terminate(0, restart=True),
        lambda: churn.kill(1 % replicas),
        lambda: churn.terminate(2 % replicas, restart=False),
    ]
    published: list[str] = []
    await churn.start()
    started = time.monotonic()
    for wave, disrupt in enumerate(disruptions):
        events = await _wave(sandbox, people, wave)
        published.extend(events)
        await results.until(events, len(events) // 3, timeout_s=RESULTS_TIMEOUT_S)
        await disrupt()
    with contextlib.suppress(TimeoutError):
        await results.until(published, len(published), timeout_s=RESULTS_TIMEOUT_S)
    wall_s = time.monotonic() - started
    await churn.stop_all()
    return published, wall_s


def _keep_requests(sandbox: Sandbox, directory: Path) -> Path:
    """The Elements simulator's request log, stamped in UTC like the workers' log lines."""
    offset = time.time() - asyncio.get_running_loop().time()
    path = directory / "elements-requests.log"
    path.write_text(
        "".join(
            f"{datetime.fromtimestamp(r.at + offset, UTC).isoformat()} {r.status} {r.method} "
            f"{r.path}{'?' + r.query if r.query else ''} {json.dumps(r.body)[:300]}\n"
            for r in sandbox.elements.requests
        )
    )
    return path


async def run_replicas_soak(
    *, replicas: int, dossiers: int, rate: int, seed: int, runs: int
) -> int:
    configure_logging("console", "ERROR")
    print(
        f"soak: {replicas} worker processes, {dossiers} dossiers with customer and contract "
        f"events in 3 waves, Elements at {rate} requests/s with 5% 500s and 5% lost answers; "
        "SIGTERM and back, SIGKILL and back, SIGTERM for good"
    )
    outcomes = []
    for run in range(runs):
        outcome = await _one_run(replicas=replicas, dossiers=dossiers, rate=rate, seed=seed + run)
        outcomes.append(outcome)
        print(json.dumps({"run": run + 1, **outcome.figures()}), flush=True)
        for duplicate in outcome.duplicates[:10]:
            print(f"  duplicate: {duplicate}")
        if outcome.logs:
            print(f"  worker logs: {outcome.logs[0].parent}")
    passed = sum(1 for o in outcomes if o.ok)
    print(
        table(
            [
                ("runs passed", f"{passed}/{runs}"),
                ("events", str(sum(o.events for o in outcomes))),
                ("events without a result", str(sum(o.events - o.answered for o in outcomes))),
                (
                    "events with more than one result",
                    f"{sum(o.answered_twice_over_a_kill for o in outcomes)} over a SIGKILL, "
                    f"{sum(o.answered_twice for o in outcomes)} otherwise",
                ),
                ("duplicate Elements entities", str(sum(len(o.duplicates) for o in outcomes))),
                ("429 answers", str(sum(o.http_429 for o in outcomes))),
                (
                    "SIGTERMs that exited 0 in time",
                    f"{sum(1 for o in outcomes for s in o.stops if s.how == 'SIGTERM' and s.clean)}"
                    f"/{sum(1 for o in outcomes for s in o.stops if s.how == 'SIGTERM')}",
                ),
                (
                    "slowest SIGTERM",
                    f"{max(s.seconds for o in outcomes for s in o.stops):.1f} s "
                    f"(handover timeout {HANDOVER_TIMEOUT_S:.0f} s)",
                ),
            ]
        )
    )
    return 0 if passed == runs else 1
