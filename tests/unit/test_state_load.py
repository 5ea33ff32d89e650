"""Loading the durable memory at start-up while the event loop keeps turning (issue 15).

`/healthz` must answer throughout a start on a large state topic, so `Runtime.load_memory`
and the portal directory's seeding that follows it hand work back to the loop in slices.
The state topic is replaced by its loaded values (no broker); a ticker task notes every
turn of the loop it gets. Sizes and bounds are loose: this is a behaviour, not a timing
benchmark (that is `python -m app bench-state`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import pytest

from app.application import Runtime
from app.kafka.state import DAILY_COUNT_KEY, OnRecord, dossier_key
from app.sandbox.state_bench import sample_record, sample_values
from app.settings import load_settings
from app.state.record import PortalLocator, portal_locator

DOSSIERS = 20_000
LONGEST_GAP_S = 0.5
MIN_TICKS = 10
"""Turns of the loop the ticker must get while loading: one long block gives it two or so."""


@dataclass
class LoadedStateTopic:
    """The state topic as `load_memory` reads it, already read to its end."""

    values: dict[str, bytes]

    async def load(self, *, timeout_s: float) -> dict[str, bytes]:
        return self.values

    def follow(self, on_record: OnRecord) -> None:
        pass

    async def close(self) -> None:
        pass


@dataclass
class Ticker:
    """Takes every turn of the event loop it is given and notes the longest wait for one."""

    ticks: int = 0
    longest_gap_s: float = 0.0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0)
            now = loop.time()
            self.ticks += 1
            self.longest_gap_s = max(self.longest_gap_s, now - last)
            last = now

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest.fixture
async def runtime(contract_environment: None) -> AsyncIterator[Runtime]:
    runtime = Runtime(load_settings())
    try:
        yield runtime
    finally:
        await runtime.pipeline.close()


async def test_loading_many_records_and_seeding_the_portal_directory_keep_the_loop_turning(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {dossier_key(number): value for number, value in sample_values(DOSSIERS)}
    values[DAILY_COUNT_KEY] = b'{"day": "2026-01-01", "used": 3}'
    monkeypatch.setattr(runtime.memory_load, "state_topic", LoadedStateTopic(values))
    last = sample_record(DOSSIERS - 1, read_at=0.0, writer="-").portal
    assert last is not None

    async with Ticker() as ticker:
        await runtime.memory_load.load()
        assert runtime.portal_seeding.seeding is not None
        await runtime.portal_seeding.seeding

    assert len(runtime.pipeline.memory) == DOSSIERS
    assert runtime.pipeline.portal.page_of(last.customer_id) == last.page
    assert ticker.longest_gap_s < LONGEST_GAP_S
    assert ticker.ticks >= MIN_TICKS


def test_a_records_portal_locator_is_read_alone() -> None:
    record = sample_record(7, read_at=1.0, writer="w")

    assert portal_locator(record.model_dump_json().encode()) == record.portal
    assert (
        portal_locator(record.model_copy(update={"portal": None}).model_dump_json().encode())
        is None
    )


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"[1, 2]",
        orjson.dumps({"version": 99, "portal": {"customer_id": "cst_1", "page": 1}}),
        orjson.dumps({"version": 2, "portal": {"customer_id": "cst_1"}}),
        orjson.dumps({"version": 2, "portal": "cst_1"}),
    ],
)
def test_no_locator_from_a_value_that_is_unreadable_of_an_unknown_version_or_malformed(
    value: bytes,
) -> None:
    assert portal_locator(value) is None


def test_a_locator_without_a_version_is_read_as_the_current_version() -> None:
    value = orjson.dumps({"portal": {"customer_id": "cst_1", "page": 4}})

    assert portal_locator(value) == PortalLocator(customer_id="cst_1", page=4)
