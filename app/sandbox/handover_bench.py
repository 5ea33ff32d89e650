"""`python -m app bench-handover`: what a RollingUpdate costs while the limiter is saturated.

Two `python -m app worker` processes in one consumer group share the Elements limit through
one redis-server; the broker and the simulators run in this process. The first worker takes
a backlog until its in-flight window is full (`KAFKA_MAX_IN_FLIGHT` events, intake paused
for the backlog); then the second starts (scale-out), and once it works too, the first gets
SIGTERM (scale-in). Measured, from the workers' own log lines and the Elements simulator's
request log on one clock:

- how long the joining worker takes to answer `/readyz` 200 while the first is busy;
- per rebalance: how long the outgoing owner took to hand its events over (from the revoke
  to its partitions let go: the requests in flight answered, what finished committed), and
  the time from the revoke (for the scale-in: from SIGTERM) to the first Elements request
  after it — the new owners' first request, since every event was stopped;
- that every input got exactly one result, and Elements holds no twin and answered no 429.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from app.logs import configure_logging
from app.sandbox.figures import duplicate_entities, table, traffic_figures
from app.sandbox.redis_server import RedisServer
from app.sandbox.simulators.seed import seed_customers
from app.sandbox.worker_process import WorkerProcess, worker_environment
from app.sandbox.world import Sandbox, SandboxOptions

BACKLOG_PAUSED = re.compile(r'^elements_sync_intake_paused\{reason="backlog"\} 1\.0$', re.M)
LATENCY_REQUESTS = 5_000
"""More Elements requests than a run makes."""
ELEMENTS_REQUESTS = re.compile(
    r'^elements_sync_upstream_requests_total\{api="elements",[^}]*\} (\S+)$', re.M
)


@dataclass(frozen=True)
class LogLine:
    at: float
    """On this process's event-loop clock, like the simulators' request log."""
    fields: dict[str, Any]


class Clocks:
    """Maps the workers' log timestamps (UTC, wall clock) onto this event loop's clock."""

    def __init__(self) -> None:
        self._offset = time.time() - asyncio.get_running_loop().time()

    def loop_time(self, timestamp: str) -> float:
        return datetime.fromisoformat(timestamp).timestamp() - self._offset

    def now(self) -> float:
        return asyncio.get_running_loop().time()


def log_lines(worker: WorkerProcess, clocks: Clocks, event: str) -> list[LogLine]:
    found = []
    for line in worker.output().splitlines():
        if not line.startswith("{"):
            continue
        fields = json.loads(line)
        if fields.get("event") == event:
            found.append(LogLine(clocks.loop_time(fields["timestamp"]), fields))
    return found


async def metrics(http: httpx.AsyncClient, worker: WorkerProcess) -> str:
    return (await http.get(f"{worker.url}/metrics")).text


async def until(
    condition: Callable[[], Awaitable[bool]], *, timeout_s: float, every_s: float = 0.2
) -> None:
    """Poll `condition`: the workers are other processes, which signal nothing."""
    async with asyncio.timeout(timeout_s):
        while not await condition():  # noqa: ASYNC110 - polled over HTTP and logs
            await asyncio.sleep(every_s)


@dataclass
class Rebalance:
    name: str
    started: float
    """The revoke (scale-out) or SIGTERM (scale-in), on the loop clock."""
    handed_over: LogLine
    let_go: float
    """When the last outgoing owner had let go (its "partitions handed over" line)."""
    assigned: LogLine
    """The first "partitions assigned" line after that: a new owner took its partitions."""
    first_request: float
    staying: LogLine | None = None
    """The revoke of the worker that stays (scale-in: every rebalance revokes everything)."""

    def rows(self) -> list[tuple[str, str]]:
        rows = [(f"{self.name}: outgoing owner's handover", _handover(self.handed_over))]
        if self.staying is not None:
            rows.append((f"{self.name}: staying owner's handover", _handover(self.staying)))
        caught_up_s = float(self.assigned.fields["caught_up_s"])
        rows.append(
            (
                f"{self.name}: to the new owners' first Elements request",
                f"{self.first_request - self.started:.2f} s (the group's rejoin "
                f"{self.assigned.at - caught_up_s - self.let_go:.2f} s, the state topic read "
                f"to its end {caught_up_s:.2f} s, then {self.first_request - self.assigned.at:.2f}"
                " s to the first request)",
            )
        )
        return rows

    def summary(self) -> dict[str, Any]:
        return {
            "handover_s": self.handed_over.fields["took_s"],
            "stopped": self.handed_over.fields["stopped"],
            "staying_handover_s": self.staying.fields["took_s"] if self.staying else None,
            "to_first_request_s": round(self.first_request - self.started, 3),
            "rejoin_s": round(
                self.assigned.at - float(self.assigned.fields["caught_up_s"]) - self.let_go, 3
            ),
            "caught_up_s": self.assigned.fields["caught_up_s"],
        }


def _handover(line: LogLine) -> str:
    fields = line.fields
    return (
        f"{fields['took_s']:.3f} s ({fields['stopped']} events stopped, "
        f"{fields['finished']} finished, {fields['cancelled']} cancelled)"
    )


def first_request_after(sandbox: Sandbox, moment: float) -> float | None:
    return next((r.at for r in sandbox.elements.requests if r.at > moment), None)


def first_assigned_after(
    workers: tuple[WorkerProcess, ...], clocks: Clocks, moment: float
) -> LogLine:
    lines = [
        line
        for worker in workers
        for line in log_lines(worker, clocks, "partitions assigned")
        if line.at > moment
    ]
    return min(lines, key=lambda line: line.at)


async def results_per_event(
    sandbox: Sandbox, wanted: set[str], *, timeout_s: float
) -> Counter[str]:
    """Read results until every wanted event has one, then a few seconds more for seconds."""
    seen: Counter[str] = Counter()
    async with sandbox.reader(sandbox.topics.results) as consumer:
        async with asyncio.timeout(timeout_s):
            while not wanted <= set(seen):
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    seen.update(json.loads(r.value)["data"]["eventId"] for r in records)
        for _ in range(15):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                seen.update(json.loads(r.value)["data"]["eventId"] for r in records)
    return seen


async def run_handover_bench(
    *,
    customers: int,
    rate: int,
    max_in_flight: int,
    session_timeout_ms: int,
    heartbeat_interval_ms: int,
    elements_latency_s: float = 0.0,
) -> int:
    """`elements_latency_s` holds every Elements answer that long, so that requests are in
    flight when a handover comes (at 5/s a fast answer is in flight a few ms of every 210)."""
    configure_logging("console", "WARNING")
    with RedisServer() as redis:
        async with Sandbox(SandboxOptions(rate_limit=rate, max_in_flight=max_in_flight)) as sandbox:
            clocks = Clocks()
            if elements_latency_s > 0:
                sandbox.elements.faults.delay_next(LATENCY_REQUESTS, elements_latency_s)
            seeded = seed_customers(sandbox.anva, sandbox.portal, customers)
            settings = sandbox.settings()
            settings.elements.limiter_redis_url = SecretStr(redis.url)
            env = {
                "LOG_LEVEL": "INFO",
                "KAFKA_SESSION_TIMEOUT_MS": str(session_timeout_ms),
                "KAFKA_HEARTBEAT_INTERVAL_MS": str(heartbeat_interval_ms),
            }
            first = WorkerProcess(worker_environment(settings, **env))
            second = WorkerProcess(worker_environment(settings, **env))
            try:
                await first.start(ready_timeout_s=60)
                published = {
                    await sandbox.publish(
                        "customer.changed",
                        {"dossierNumber": c.dossier_number},
                        key=c.dossier_number,
                    )
                    for c in seeded
                }
                async with httpx.AsyncClient(timeout=5) as http:

                    async def window_full() -> bool:
                        return bool(BACKLOG_PAUSED.search(await metrics(http, first)))

                    await until(window_full, timeout_s=60)
                    await asyncio.sleep(2)  # the events are under way: reads, first writes
                    spawned = clocks.now()
                    await second.spawn()
                    await second.until_status("/readyz", 200, timeout_s=120)
                    ready_s = clocks.now() - spawned
                    scale_out = await _scale_out(sandbox, (first, second), clocks)

                    async def second_works() -> bool:
                        found = ELEMENTS_REQUESTS.findall(await metrics(http, second))
                        return sum(float(v) for v in found) >= 10

                    await until(second_works, timeout_s=120)
                terminated = clocks.now()
                exit_code = await first.terminate(timeout_s=60)
                exit_s = clocks.now() - terminated
                scale_in = await _scale_in(sandbox, first, second, clocks, terminated)
                seen = await results_per_event(
                    sandbox, published, timeout_s=120 + 20 * customers / rate
                )
            finally:
                await first.close()
                await second.close()
            figures = traffic_figures(sandbox.elements, rate)
            twins = duplicate_entities(sandbox.elements.dossiers())
    twice = sum(1 for n in seen.values() if n > 1)
    print(
        f"handover benchmark: {customers} new customers, {max_in_flight} events in flight per "
        f"worker, Elements limit {rate}/s shared through Redis, session timeout "
        f"{session_timeout_ms} ms, heartbeat {heartbeat_interval_ms} ms, Elements answering "
        f"after {elements_latency_s:g} s"
    )
    print(
        table(
            [
                ("joining worker ready (/readyz 200) while the first is busy", f"{ready_s:.2f} s"),
                *scale_out.rows(),
                ("scale-in: SIGTERM to exit", f"{exit_s:.2f} s (exit code {exit_code})"),
                *scale_in.rows(),
                ("inputs with a result", f"{len(set(seen) & published)}/{len(published)}"),
                ("inputs with more than one result", str(twice)),
                ("twins in Elements", str(len(twins))),
                ("429 answers", str(figures.too_many_requests)),
            ]
        )
    )
    print(
        json.dumps(
            {
                "ready_s": round(ready_s, 3),
                "scale_out": scale_out.summary(),
                "scale_in": {**scale_in.summary(), "exit_s": round(exit_s, 3)},
                "results": len(set(seen) & published),
                "inputs": len(published),
                "twice": twice,
                "twins": len(twins),
                "http_429": figures.too_many_requests,
            }
        )
    )
    ok = published <= set(seen) and not twice and not twins and figures.too_many_requests == 0
    return 0 if ok and exit_code == 0 else 1


async def _scale_out(
    sandbox: Sandbox, workers: tuple[WorkerProcess, WorkerProcess], clocks: Clocks
) -> Rebalance:
    """The first worker's revoke when the second joined, and the first request after it."""
    first = workers[0]

    async def handed_over() -> bool:
        lines = log_lines(first, clocks, "partitions handed over")
        return bool(lines) and first_request_after(sandbox, lines[0].at) is not None

    await until(handed_over, timeout_s=120)
    started = log_lines(first, clocks, "handing partitions over")[0]
    done = log_lines(first, clocks, "partitions handed over")[0]
    first_request = first_request_after(sandbox, done.at)
    assert first_request is not None
    assigned = first_assigned_after(workers, clocks, done.at)
    return Rebalance("scale-out", started.at, done, done.at, assigned, first_request)


async def _scale_in(
    sandbox: Sandbox,
    first: WorkerProcess,
    second: WorkerProcess,
    clocks: Clocks,
    terminated: float,
) -> Rebalance:
    """The first worker's drain on SIGTERM, the second's revoke when the first left, and the
    first request after that."""

    def second_revoked() -> LogLine | None:
        return next(
            (
                line
                for line in log_lines(second, clocks, "partitions handed over")
                if line.at > terminated
            ),
            None,
        )

    async def taken_over() -> bool:
        done = second_revoked()
        return done is not None and first_request_after(sandbox, done.at) is not None

    await until(taken_over, timeout_s=120)
    drained = log_lines(first, clocks, "partitions handed over")[-1]
    done = second_revoked()
    assert done is not None
    first_request = first_request_after(sandbox, done.at)
    assert first_request is not None
    assigned = first_assigned_after((second,), clocks, done.at)
    return Rebalance(
        "scale-in", terminated, drained, done.at, assigned, first_request, staying=done
    )
