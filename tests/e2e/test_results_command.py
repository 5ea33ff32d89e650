"""`python -m app results`: the result topic as a table with counts, and `--follow`."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from app.commands.results import HEADER, show_results
from app.sandbox.simulators.seed import sample_customer, seed_customer
from app.sandbox.worker_process import worker_environment
from app.sandbox.world import Sandbox
from tests.e2e.helpers import sync

pytestmark = pytest.mark.e2e


async def three_outcomes(sandbox: Sandbox) -> tuple[str, str]:
    """A succeeded, a failed (customer unknown) and a rejected (not JSON) result."""
    known = seed_customer(sandbox.anva, sandbox.portal, 0).dossier_number
    unknown = sample_customer(1).dossier_number
    await sandbox.start_worker()
    await sync(sandbox, known)
    await sync(sandbox, unknown)
    await sandbox.publish_raw(sandbox.topics.customer_events, "garbage", b"not json")
    await sandbox.results(3)
    return known, unknown


async def stopped_worker(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    """The in-process worker logs to stdout too: stop it and drop what it printed."""
    await sandbox.stop_worker()
    capsys.readouterr()


def cells(line: str) -> list[str]:
    return line.split()


async def test_results_lists_each_result_and_counts_them_by_status_and_error_code(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    known, unknown = await three_outcomes(sandbox)
    await stopped_worker(sandbox, capsys)

    await show_results(sandbox.settings(), since=timedelta(hours=1), follow=False)

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == HEADER
    rows = sorted(cells(line)[2:] for line in lines[1:4])
    assert rows == sorted(
        [
            ["customer.changed", known, "succeeded", "6"],
            ["customer.changed", unknown, "failed", "0", "customer_not_found"],
            ["-", "garbage", "rejected", "0", "not_json"],
        ]
    )
    assert lines[-3:] == [
        "results: 3",
        "by status: failed 1, rejected 1, succeeded 1",
        "by error code: customer_not_found 1, not_json 1",
    ]


async def test_results_since_a_period_leaves_older_results_out(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    await three_outcomes(sandbox)
    await stopped_worker(sandbox, capsys)
    await asyncio.sleep(1.5)

    await show_results(sandbox.settings(), since=timedelta(seconds=1), follow=False)

    assert capsys.readouterr().out.splitlines()[-3:] == [
        "results: 0",
        "by status: -",
        "by error code: -",
    ]


async def test_results_follow_prints_new_results_as_they_arrive_and_exits_0_on_sigint(
    sandbox: Sandbox,
) -> None:
    known, _ = await three_outcomes(sandbox)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "results",
        "--follow",
        "--since",
        "30m",
        env=worker_environment(sandbox.settings()),
        cwd=Path(__file__).parents[2],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(60):
        shown = [(await process.stdout.readline()).decode() for _ in range(4)]
        assert shown[0].rstrip("\n") == HEADER
        await sync(sandbox, known)
        followed = (await process.stdout.readline()).decode()
        assert cells(followed)[2:] == ["customer.changed", known, "succeeded", "0"]
        process.send_signal(signal.SIGINT)
        rest, stderr = await process.communicate()

    assert process.returncode == 0, stderr.decode()
    assert rest.decode().splitlines()[-3:-1] == [
        "results: 4",
        "by status: succeeded 2, failed 1, rejected 1",
    ]
