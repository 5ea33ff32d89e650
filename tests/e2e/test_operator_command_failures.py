"""An operator command whose Kafka or API does not answer ends in one line on stderr, exit 1."""

from __future__ import annotations

import pytest

from app.sandbox.worker_process import free_port, worker_environment
from app.sandbox.world import Sandbox
from tests.e2e.helpers import run_app

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "args", [["redrive"], ["redrive", "--dry-run"], ["dead-letters"], ["results"], ["backfill"]]
)
async def test_a_command_whose_kafka_is_unreachable_fails_in_one_line_with_exit_1(
    sandbox: Sandbox, args: list[str]
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    env = worker_environment(sandbox.settings(), KAFKA_BOOTSTRAP_SERVERS=closed)

    ran = await run_app(env, *args)

    assert (ran.code, ran.out) == (1, "")
    (line,) = ran.err.splitlines()
    assert line.startswith(f"{args[0]} failed: KafkaConnectionError: Unable to bootstrap")
    assert closed.split(":")[1] in line


async def test_a_backfill_whose_api_is_unreachable_fails_in_one_line_with_exit_1(
    sandbox: Sandbox,
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/api"
    env = worker_environment(sandbox.settings(), ANVA_BASE_URL=closed)

    ran = await run_app(env, "backfill")

    assert (ran.code, ran.out) == (1, "")
    (line,) = ran.err.splitlines()
    assert line.startswith("backfill failed: UpstreamUnavailable: ")
