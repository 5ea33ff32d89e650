"""Per-key ordering with bounded concurrency, and per-key mutual exclusion."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from app.kafka.keyed import KeyedDispatcher
from app.state.locks import KeyedLocks

# Only spent when a test is failing (a job that should run never does).
PATIENCE_S = 1.0


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(20):
        await asyncio.sleep(0)


def recorder(
    log: list[str], name: str, gate: asyncio.Event | None = None
) -> Callable[[], Awaitable[None]]:
    """A job that logs its start, waits for `gate` if given, and logs its end."""

    async def job() -> None:
        log.append(f"{name} start")
        if gate is not None:
            await gate.wait()
        log.append(f"{name} end")

    return job


async def test_jobs_of_one_key_run_in_submission_order_even_when_earlier_are_slower() -> None:
    dispatcher, log, gate = KeyedDispatcher(max_in_flight=10), [], asyncio.Event()
    await dispatcher.submit("a", recorder(log, "a1", gate))
    await dispatcher.submit("a", recorder(log, "a2"))
    await dispatcher.submit("a", recorder(log, "a3"))
    await settle()
    assert log == ["a1 start"]
    gate.set()
    assert await dispatcher.drain(PATIENCE_S)
    assert log == ["a1 start", "a1 end", "a2 start", "a2 end", "a3 start", "a3 end"]


async def test_jobs_of_different_keys_run_concurrently() -> None:
    dispatcher, log, gate = KeyedDispatcher(max_in_flight=10), [], asyncio.Event()
    b_done = asyncio.Event()

    async def job_b() -> None:
        log.append("b")
        b_done.set()

    await dispatcher.submit("a", recorder(log, "a1", gate))
    await dispatcher.submit("b", job_b)
    await asyncio.wait_for(b_done.wait(), PATIENCE_S)
    assert log == ["a1 start", "b"]
    gate.set()
    assert await dispatcher.drain(PATIENCE_S)


async def test_submit_blocks_while_max_in_flight_jobs_are_running() -> None:
    dispatcher, log = KeyedDispatcher(max_in_flight=2), []
    gates = {name: asyncio.Event() for name in ("a", "b")}
    for name, gate in gates.items():
        await dispatcher.submit(name, recorder(log, name, gate))
    third = asyncio.create_task(dispatcher.submit("c", recorder(log, "c")))
    await settle()
    assert not third.done()
    assert dispatcher.in_flight == 2
    gates["a"].set()
    await asyncio.wait_for(third, PATIENCE_S)
    gates["b"].set()
    assert await dispatcher.drain(PATIENCE_S)
    assert log.index("c start") > log.index("a end")


async def test_failing_job_does_not_stop_later_jobs_of_its_key() -> None:
    dispatcher, log = KeyedDispatcher(max_in_flight=10), []

    async def failing() -> None:
        log.append("boom")
        raise RuntimeError("job failed")

    await dispatcher.submit("a", failing)
    await dispatcher.submit("a", recorder(log, "a2"))
    assert await dispatcher.drain(PATIENCE_S)
    assert log == ["boom", "a2 start", "a2 end"]
    assert dispatcher.in_flight == 0


async def test_failing_job_releases_its_slot() -> None:
    dispatcher = KeyedDispatcher(max_in_flight=1)

    async def failing() -> None:
        raise RuntimeError("job failed")

    await dispatcher.submit("a", failing)
    await asyncio.wait_for(dispatcher.submit("b", failing), PATIENCE_S)
    assert await dispatcher.drain(PATIENCE_S)


async def test_drain_waits_for_every_queued_job() -> None:
    dispatcher, log = KeyedDispatcher(max_in_flight=10), []
    gate = asyncio.Event()
    for key, name in [("a", "a1"), ("a", "a2"), ("b", "b1")]:
        await dispatcher.submit(key, recorder(log, name, gate))
    drained = asyncio.create_task(dispatcher.drain(PATIENCE_S))
    await settle()
    assert not drained.done()
    gate.set()
    assert await drained
    assert sorted(log) == sorted(f"{n} {e}" for n in ("a1", "a2", "b1") for e in ("start", "end"))
    assert dispatcher.in_flight == 0


async def test_drain_reports_false_when_jobs_outlive_the_deadline() -> None:
    dispatcher, gate = KeyedDispatcher(max_in_flight=10), asyncio.Event()
    await dispatcher.submit("a", recorder([], "a1", gate))
    assert await dispatcher.drain(0.001) is False
    gate.set()
    assert await dispatcher.drain(PATIENCE_S)


async def test_drain_with_nothing_queued_returns_true_at_once() -> None:
    assert await KeyedDispatcher(max_in_flight=1).drain(0)


async def holder(locks: KeyedLocks, key: str, log: list[str], gate: asyncio.Event) -> None:
    async with locks.hold(key):
        log.append(f"{key} in")
        await gate.wait()
        log.append(f"{key} out")


async def test_lock_of_one_key_is_mutually_exclusive() -> None:
    locks, log, gate = KeyedLocks(), [], asyncio.Event()
    first = asyncio.create_task(holder(locks, "k", log, gate))
    second = asyncio.create_task(holder(locks, "k", log, gate))
    await settle()
    assert log == ["k in"]
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, second), PATIENCE_S)
    assert log == ["k in", "k out", "k in", "k out"]


async def test_locks_of_different_keys_do_not_exclude_each_other() -> None:
    locks, log, gate = KeyedLocks(), [], asyncio.Event()
    tasks = [asyncio.create_task(holder(locks, key, log, gate)) for key in ("a", "b")]
    await settle()
    assert log == ["a in", "b in"]
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), PATIENCE_S)


async def test_locks_are_dropped_after_use() -> None:
    locks, gate = KeyedLocks(), asyncio.Event()
    tasks = [asyncio.create_task(holder(locks, key, [], gate)) for key in ("a", "a", "b")]
    await settle()
    assert set(locks._locks) == {"a", "b"}
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), PATIENCE_S)
    assert locks._locks == {}


async def test_locks_are_dropped_after_a_failure_or_a_cancelled_waiter() -> None:
    locks, gate = KeyedLocks(), asyncio.Event()
    first = asyncio.create_task(holder(locks, "k", [], gate))
    waiter = asyncio.create_task(holder(locks, "k", [], gate))
    await settle()
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    gate.set()
    await first
    try:
        async with locks.hold("k"):
            raise RuntimeError("inside")
    except RuntimeError:
        pass
    assert locks._locks == {}
