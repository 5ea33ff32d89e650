"""Two `python -m app worker` processes in one consumer group share the Elements limit through
a real redis-server; SIGKILL one of them mid-backlog and every event still gets its result."""

from __future__ import annotations

import asyncio
import json
import re
from collections import defaultdict

import httpx
import pytest
from pydantic import SecretStr

from app.sandbox.figures import duplicate_entities, traffic_figures
from app.sandbox.replicas_bench import densest_second_gaps_ms
from app.sandbox.simulators.seed import seed_customers
from app.sandbox.worker_process import WorkerProcess, worker_environment
from app.sandbox.world import Sandbox
from tests.conftest import SandboxFactory
from tests.e2e.helpers import sync

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

RATE = 5
CUSTOMERS = 24
SUCCEEDED = re.compile(r'^elements_sync_events_total\{[^}]*status="succeeded"[^}]*\} (\S+)$', re.M)


async def events_succeeded(http: httpx.AsyncClient, worker: WorkerProcess) -> float:
    """What the worker's own /metrics counts as succeeded."""
    text = (await http.get(f"{worker.url}/metrics")).text
    return sum(float(value) for value in SUCCEEDED.findall(text))


async def statuses_by_event(
    sandbox: Sandbox, wanted: set[str], *, timeout_s: float
) -> dict[str, list[str]]:
    """Read results until every wanted event has one; every result's status, per event id."""
    seen: dict[str, list[str]] = defaultdict(list)
    async with sandbox.reader(sandbox.topics.results) as consumer, asyncio.timeout(timeout_s):
        while not wanted <= set(seen):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    data = json.loads(record.value)["data"]
                    seen[data["eventId"]].append(data["status"])
    return seen


async def test_two_workers_share_the_limit_and_a_killed_one_leaves_no_event_without_a_result(
    make_sandbox: SandboxFactory, redis_url: str
) -> None:
    sandbox: Sandbox = await make_sandbox(rate_limit=RATE)
    customers = seed_customers(sandbox.anva, sandbox.portal, CUSTOMERS)
    settings = sandbox.settings()
    settings.elements.limiter_redis_url = SecretStr(redis_url)
    first = WorkerProcess(worker_environment(settings, LOG_LEVEL="WARNING"))
    second = WorkerProcess(worker_environment(settings, LOG_LEVEL="WARNING"))

    try:
        await asyncio.gather(first.start(), second.start())
        published = {await sync(sandbox, c.dossier_number) for c in customers}

        # One client, polled once a second: the simulators share this process's event loop,
        # and a stalled loop stamps their requests' arrivals late, and closer together.
        async with httpx.AsyncClient() as http, asyncio.timeout(60):
            while min([await events_succeeded(http, w) for w in (first, second)]) < 2:  # noqa: ASYNC110 - polled over HTTP
                await asyncio.sleep(1.0)
        await first.kill()
        killed_at = asyncio.get_running_loop().time()

        statuses = await statuses_by_event(sandbox, published, timeout_s=90)
    finally:
        await first.close()
        await second.close()
    figures = traffic_figures(sandbox.elements, RATE)

    assert published <= set(statuses)
    assert {status for results in statuses.values() for status in results} == {"succeeded"}
    assert len(sandbox.elements.dossiers()) == CUSTOMERS
    assert duplicate_entities(sandbox.elements.dossiers()) == []
    refused_s = [round(r.at - killed_at, 2) for r in sandbox.elements.requests if r.status == 429]
    assert figures.too_many_requests == 0, (
        f"429s at {refused_s} s from the kill; densest second's gaps (ms) "
        f"{densest_second_gaps_ms(sandbox.elements)}"
    )
    assert figures.max_in_rolling_second <= RATE
