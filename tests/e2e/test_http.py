"""The worker's HTTP side end to end: portal forms, prefill, health, readiness, metrics."""

from __future__ import annotations

import json

import httpx
import pytest

from app import __version__
from app.sandbox.simulators.seed import seed_customer
from app.sandbox.world import Sandbox
from app.settings import FormsSettings
from tests.e2e.helpers import only_dossier, only_klant, synced_customer

pytestmark = pytest.mark.e2e

FORM = {"X-Customer-Id": "cst_000000000000", "X-Form-Id": "frm_contact"}


async def test_a_forms_post_is_in_kafka_when_answered_and_reaches_elements(
    sandbox: Sandbox,
) -> None:
    customer = await synced_customer(sandbox)

    async with httpx.AsyncClient(base_url=sandbox.urls["worker"]) as http:
        answer = await http.post(
            "/forms/submissions",
            headers=FORM,
            json={"email": "formulier@example.nl", "colour": "red"},
        )
    (published,) = await sandbox.read(sandbox.topics.form_submissions, 1, timeout_s=1)
    _, result = await sandbox.results(2)

    assert answer.status_code == 202
    assert published.key == b"cst_000000000000"
    assert json.loads(published.value)["data"]["fields"] == {
        "email": "formulier@example.nl",
        "colour": "red",
    }
    assert result.data.eventId == answer.json()["eventId"]
    assert result.data.status == "succeeded"
    assert result.data.ignoredFields == ["colour"]
    klant = only_klant(only_dossier(sandbox, customer.dossier_number))
    assert "formulier@example.nl" in [e["naam"] for e in klant["emailadressen"]]


async def test_a_forms_get_carries_the_fields_in_the_query_string(sandbox: Sandbox) -> None:
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    await sandbox.start_worker()

    async with httpx.AsyncClient(base_url=sandbox.urls["worker"]) as http:
        answer = await http.get("/forms/submissions", headers=FORM, params={"city": "Zwolle"})
    (result,) = await sandbox.results(1)

    assert answer.status_code == 202
    assert result.data.status == "succeeded"
    dossier = only_dossier(sandbox, customer.dossier_number)
    assert dossier["_embedded"]["standaardcorrespondentieadres"]["plaatsnaam"] == "Zwolle"


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        ({"X-Form-Id": "frm_contact"}, b"{}", "missing_header"),
        ({"X-Customer-Id": "cst_000000000000"}, b"{}", "missing_header"),
        (FORM, b"[1, 2]", "invalid_body"),
        (FORM, b"not json", "invalid_body"),
    ],
    ids=["no-customer-id", "no-form-id", "array-body", "not-json"],
)
async def test_bad_form_requests_get_a_400_with_a_json_error_and_publish_nothing(
    sandbox: Sandbox, headers: dict[str, str], body: bytes, error: str
) -> None:
    await sandbox.start_worker()

    async with httpx.AsyncClient(base_url=sandbox.urls["worker"]) as http:
        answer = await http.post(
            "/forms/submissions",
            headers={**headers, "Content-Type": "application/json"},
            content=body,
        )

    assert answer.status_code == 400
    assert answer.json()["error"] == error
    async with sandbox.reader(sandbox.topics.form_submissions) as consumer:
        assert await consumer.getmany(timeout_ms=500) == {}


async def test_prefill_after_a_sync_answers_the_known_fields(sandbox: Sandbox) -> None:
    await synced_customer(sandbox)

    async with httpx.AsyncClient(base_url=sandbox.urls["worker"]) as http:
        answer = await http.get("/forms/prefill", headers={**FORM, "Accept": "application/json"})

    assert answer.status_code == 200
    assert answer.json() == {
        "email": "klant0@example.nl",
        "phone": "+31 6 10000000",
        "street": "Hoofdstraat",
        "houseNumber": "12",
        "houseNumberAddition": "A",
        "postcode": "1000AB",
        "city": "Amsterdam",
    }


async def test_health_metrics_and_asyncapi_are_served(sandbox: Sandbox) -> None:
    await synced_customer(sandbox)

    async with httpx.AsyncClient(base_url=sandbox.urls["worker"]) as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
        await http.get("/forms/prefill", headers={**FORM, "Accept": "application/json"})
        metrics = (await http.get("/metrics")).text
        asyncapi = (await http.get("/asyncapi.json")).json()

    assert health.status_code == ready.status_code == 200
    assert ready.json() == {"ready": True, "assignedPartitions": 4 * 4}
    assert 'elements_sync_events_total{status="succeeded",type="customer.changed"} 1.0' in metrics
    for line in (
        'elements_sync_upstream_requests_total{api="anva",code="200"}',
        'elements_sync_upstream_requests_total{api="portal",code="200"}',
        'elements_sync_upstream_requests_total{api="elements",code="200"}',
        'elements_sync_upstream_request_seconds_bucket{api="elements",le="+Inf"}',
        'elements_sync_forms_requests_total{code="200",route="/forms/prefill"} 1.0',
        'elements_sync_forms_request_seconds_bucket{le="+Inf",route="/forms/prefill"} 1.0',
        f'elements_sync_build_info{{version="{__version__}"}} 1.0',
        "process_resident_memory_bytes",
        "python_info{",
        "elements_sync_processing_seconds_bucket",
        "elements_sync_limiter_wait_seconds_bucket",
        "elements_sync_daily_budget_remaining",
        "elements_sync_consumer_lag",
    ):
        assert line in metrics
    addresses = {channel["address"] for channel in asyncapi["channels"].values()}
    assert {
        sandbox.topics.results,
        sandbox.topics.dead_letter,
        sandbox.topics.customer_events,
    } <= addresses


@pytest.mark.own_broker
async def test_readyz_goes_non_200_when_the_broker_is_gone(sandbox: Sandbox) -> None:
    await sandbox.start_worker()
    async with httpx.AsyncClient(base_url=sandbox.urls["worker"], timeout=10) as http:
        assert (await http.get("/readyz")).status_code == 200
        assert sandbox.broker is not None
        await sandbox.broker.kill()

        answer = await http.get("/readyz")

    assert answer.status_code == 503
    assert answer.json() == {
        "ready": False,
        "reason": "kafka_not_connected",
        "detail": "the broker does not answer",
    }


@pytest.mark.own_broker
async def test_a_form_is_answered_503_when_kafka_cannot_take_it(sandbox: Sandbox) -> None:
    await sandbox.start_worker(forms=FormsSettings(publish_timeout_s=1.0, allow_anonymous=True))
    assert sandbox.broker is not None
    await sandbox.broker.kill()

    async with httpx.AsyncClient(base_url=sandbox.urls["worker"], timeout=10) as http:
        answer = await http.post("/forms/submissions", headers=FORM, json={"city": "Zwolle"})
    await sandbox.broker.start()  # lets the producer flush on shutdown instead of timing out

    assert answer.status_code == 503
    assert answer.json()["error"] == "kafka_unavailable"
