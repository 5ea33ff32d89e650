"""A Kafka that speaks only TLS: the worker connects with the security settings, or not at all."""

from __future__ import annotations

import httpx
import pytest

from app.kafka.topics import service_topics
from app.sandbox.simulators.seed import seed_customer
from app.sandbox.tls import Certificates
from app.sandbox.worker_process import WorkerProcess, worker_environment
from app.sandbox.world import Sandbox
from tests.conftest import SandboxFactory
from tests.e2e.helpers import eventually, only_dossier, sync

pytestmark = pytest.mark.e2e

RETRYING = "Kafka not ready for the worker; retrying"
UNREADY_RETRIES = 3
"""Connection attempts the test sees fail before it looks at readiness and topics."""


async def test_a_worker_over_tls_trusting_the_test_ca_syncs_a_customer_end_to_end(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox: Sandbox = await make_sandbox(kafka_tls="server")
    assert sandbox.certificates is not None
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    env = worker_environment(sandbox.settings())

    async with WorkerProcess(env):
        event_id = await sync(sandbox, customer.dossier_number)
        (result,) = await sandbox.results(1)

    assert env["KAFKA_SECURITY_PROTOCOL"] == "SSL"
    assert env["KAFKA_SSL_CA_FILE"] == str(sandbox.certificates.ca_file)
    assert "KAFKA_SSL_CERT_FILE" not in env
    assert (result.data.eventId, result.data.status) == (event_id, "succeeded")
    assert only_dossier(sandbox, customer.dossier_number)["relatienummer"] == (
        customer.dossier_number
    )


async def test_a_worker_with_a_client_certificate_syncs_through_a_broker_that_requires_one(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox: Sandbox = await make_sandbox(kafka_tls="mutual")
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    runtime = await sandbox.start_worker()

    event_id = await sync(sandbox, customer.dossier_number)
    (result,) = await sandbox.results(1)

    assert runtime.settings.kafka.ssl_cert_file is not None
    assert await runtime.ready()
    assert (result.data.eventId, result.data.status) == (event_id, "succeeded")
    assert len(sandbox.elements.dossiers()) == 1


async def test_a_worker_that_does_not_trust_the_broker_certificate_never_becomes_ready(
    make_sandbox: SandboxFactory, certificates: Certificates
) -> None:
    sandbox: Sandbox = await make_sandbox(kafka_tls="server")
    env = worker_environment(sandbox.settings(), KAFKA_SSL_CA_FILE=str(certificates.ca_file))
    worker = WorkerProcess(env)
    try:
        await worker.spawn()
        await worker.until_status("/healthz", 200, timeout_s=30)
        async with httpx.AsyncClient(base_url=worker.url) as http:
            before = (await http.get("/readyz")).status_code
            await eventually(lambda: worker.output().count(RETRYING) >= UNREADY_RETRIES)
            after = (await http.get("/readyz")).status_code
        output = worker.output()
    finally:
        await worker.close()
    async with sandbox.admin() as admin:
        existing = set(await admin.list_topics())

    assert (before, after) == (503, 503)
    assert "CERTIFICATE_VERIFY_FAILED" in output
    assert existing.isdisjoint(spec.name for spec in service_topics(sandbox.topics))
