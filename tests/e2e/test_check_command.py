"""`python -m app check` as its own process, configured by environment like production, against
the embedded broker and the simulators: all ok on the sandbox's own settings, and each fault
named by the variable to fix, with the other checks still run; nothing written anywhere."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from app.kafka.connection import client_options
from app.kafka.topics import ensure_topics
from app.sandbox.tenant import KANTOOR_ID
from app.sandbox.worker_process import free_port, worker_environment
from app.sandbox.world import Sandbox
from app.settings import Settings
from tests.conftest import SandboxFactory
from tests.e2e.helpers import run_app

pytestmark = pytest.mark.e2e

CHECK_TIMEOUT_S = 40.0
VARIABLES = re.compile(r"\(([A-Z][A-Z0-9_]*(?:, [A-Z][A-Z0-9_]*)*)\)$")
WRONG = "wrong-secret-value"


@dataclass(frozen=True)
class Run:
    status: int
    lines: list[str]
    stderr: str

    def not_ok(self) -> dict[str, tuple[str, set[str]]]:
        """Each check line that is not `ok`, by what it checks: its status and the variables
        it names at its end."""
        found: dict[str, tuple[str, set[str]]] = {}
        for line in self.lines[:-1]:
            status, rest = line.split(" ", 1)
            if status != "ok":
                named = VARIABLES.search(rest)
                found[rest.split(":", 1)[0]] = (
                    status,
                    set(named[1].split(", ")) if named else set(),
                )
        return found


async def check(env: dict[str, str]) -> Run:
    ran = await run_app(env, "check", timeout_s=CHECK_TIMEOUT_S)
    return Run(ran.code, ran.out.splitlines(), ran.err)


async def ready_sandbox(make_sandbox: SandboxFactory) -> tuple[Sandbox, Settings]:
    """A sandbox as an operator leaves it before the first rollout: every topic created, and
    a klantdossier of the tenant's kantoor in Elements."""
    sandbox: Sandbox = await make_sandbox()
    settings = sandbox.settings()
    await ensure_topics(settings.kafka, settings.topics)
    sandbox.elements.add_dossier("100001", kantoor_id=KANTOOR_ID)
    return sandbox, settings


async def end_offsets(sandbox: Sandbox, settings: Settings) -> dict[TopicPartition, int]:
    """Every partition's end offset of the service's topics: a message added moves one."""
    async with sandbox.admin() as admin:
        described = await admin.describe_topics(list(settings.topics.model_dump().values()))
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    consumer = AIOKafkaConsumer(**client_options(settings.kafka), group_id=None)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


def elements_writes(sandbox: Sandbox) -> list[tuple[str, str]]:
    return [
        (r.method, r.path)
        for r in sandbox.elements.requests
        if r.path.startswith("/api/data") and r.method != "GET"
    ]


async def test_check_passes_on_the_sandbox_configuration_with_and_without_redis_and_writes_nothing(
    make_sandbox: SandboxFactory, redis_url: str
) -> None:
    sandbox, settings = await ready_sandbox(make_sandbox)
    env = worker_environment(settings)
    before = await end_offsets(sandbox, settings)

    alone, shared = await asyncio.gather(
        check(env), check({**env, "ELEMENTS_LIMITER_REDIS_URL": redis_url})
    )

    for run in (alone, shared):
        assert (run.status, run.not_ok(), run.stderr) == (0, {}, "")
        assert run.lines[-1] == "9 checks: 9 ok, 0 FAIL"
    assert [line.split(":")[0] for line in alone.lines[:-1]] == [
        "ok settings complete",
        "ok Kafka reachable",
        "ok topics present",
        f"ok consumer group {settings.kafka.group_id} usable",
        "ok Redis reachable",
        "ok ANVA token accepted",
        "ok portal token accepted",
        "ok Elements credentials accepted",
        "ok kantoor on existing klantdossiers",
    ]
    assert "not configured" in alone.lines[4]
    assert "answered PING" in shared.lines[4]
    assert elements_writes(sandbox) == []
    assert [r.path for r in sandbox.elements.requests].count("/oauth/access_token") == 2
    assert await end_offsets(sandbox, settings) == before


async def test_check_names_the_variable_to_fix_for_each_fault_and_runs_the_other_checks(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox, settings = await ready_sandbox(make_sandbox)
    env = worker_environment(settings)
    group = f"consumer group {settings.kafka.group_id} usable"
    missing_topic = f"{settings.topics.results}-missing"
    without_propositie = {k: v for k, v in env.items() if k != "ELEMENTS_CONTRACT_PROPOSITIE_ID"}
    faults: dict[str, dict[str, str]] = {
        "closed Kafka port": {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"},
        "missing topic": {"TOPIC_RESULTS": missing_topic, "KAFKA_CREATE_TOPICS": "false"},
        "missing topic, creation on": {"TOPIC_RESULTS": missing_topic},
        "wrong ANVA token": {"ANVA_TOKEN": WRONG},
        "wrong portal token": {"PORTAL_TOKEN": WRONG},
        "wrong Elements client secret": {"ELEMENTS_CLIENT_SECRET": WRONG},
        "unreachable Redis": {"ELEMENTS_LIMITER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
    }
    before = await end_offsets(sandbox, settings)

    runs = dict(
        zip(
            [*faults, "unset contract id"],
            await asyncio.gather(
                *(check({**env, **fault}) for fault in faults.values()), check(without_propositie)
            ),
            strict=True,
        )
    )

    assert {case: (run.status, run.not_ok()) for case, run in runs.items()} == {
        "closed Kafka port": (
            1,
            {
                "Kafka reachable": ("FAIL", {"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL"}),
                "topics present": ("skip", set()),
                group: ("skip", set()),
            },
        ),
        "missing topic": (1, {"topics present": ("FAIL", {"TOPIC_RESULTS"})}),
        "missing topic, creation on": (0, {"topics present": ("warn", {"TOPIC_RESULTS"})}),
        "wrong ANVA token": (1, {"ANVA token accepted": ("FAIL", {"ANVA_TOKEN"})}),
        "wrong portal token": (1, {"portal token accepted": ("FAIL", {"PORTAL_TOKEN"})}),
        "wrong Elements client secret": (
            1,
            {
                "Elements credentials accepted": (
                    "FAIL",
                    {"ELEMENTS_CLIENT_ID", "ELEMENTS_CLIENT_SECRET"},
                ),
                "kantoor on existing klantdossiers": ("skip", set()),
            },
        ),
        "unreachable Redis": (
            1,
            {
                "Redis reachable": ("FAIL", {"ELEMENTS_LIMITER_REDIS_URL"}),
                "Elements credentials accepted": ("skip", set()),
                "kantoor on existing klantdossiers": ("skip", set()),
            },
        ),
        "unset contract id": (
            1,
            {"settings complete": ("FAIL", {"ELEMENTS_CONTRACT_PROPOSITIE_ID"})},
        ),
    }
    assert {case: run.lines[-1] for case, run in runs.items()} == {
        "closed Kafka port": "9 checks: 6 ok, 1 FAIL, 2 skipped",
        "missing topic": "9 checks: 8 ok, 1 FAIL",
        "missing topic, creation on": "9 checks: 8 ok, 0 FAIL, 1 warning",
        "wrong ANVA token": "9 checks: 8 ok, 1 FAIL",
        "wrong portal token": "9 checks: 8 ok, 1 FAIL",
        "wrong Elements client secret": "9 checks: 7 ok, 1 FAIL, 1 skipped",
        "unreachable Redis": "9 checks: 6 ok, 1 FAIL, 2 skipped",
        "unset contract id": "9 checks: 8 ok, 1 FAIL",
    }
    assert [case for case, run in runs.items() if run.stderr] == []
    printed = "\n".join(line for run in runs.values() for line in run.lines)
    secrets = [WRONG, sandbox.anva_token, sandbox.portal_token, sandbox.elements_secret]
    assert [secret for secret in secrets if secret in printed] == []
    assert elements_writes(sandbox) == []
    assert await end_offsets(sandbox, settings) == before
    async with sandbox.admin() as admin:
        assert missing_topic not in await admin.list_topics()
