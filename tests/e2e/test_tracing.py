"""Tracing end to end: the input's W3C trace context is continued by the event's span, its
HTTP calls are child spans, and its result and dead letter carry the trace on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from structlog.testing import capture_logs

from app.logs import add_trace_context
from app.sandbox.simulators.seed import seed_customer
from app.sandbox.world import CLOUDEVENTS_PRODUCER_HEADERS, Sandbox
from app.settings import TracingSettings
from app.web.server import serve
from tests.conftest import SandboxFactory
from tests.e2e.helpers import eventually, sync

pytestmark = pytest.mark.e2e

INPUT_TRACEPARENT = dict(CLOUDEVENTS_PRODUCER_HEADERS)["traceparent"].decode()
_, INPUT_TRACE_HEX, INPUT_SPAN_HEX, _ = INPUT_TRACEPARENT.split("-")
INPUT_TRACE_ID = int(INPUT_TRACE_HEX, 16)
INPUT_SPAN_ID = int(INPUT_SPAN_HEX, 16)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced_sandbox(make_sandbox: SandboxFactory, exporter: InMemorySpanExporter) -> Sandbox:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sandbox: Sandbox = await make_sandbox(tracer_provider=provider)
    return sandbox


def event_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CONSUMER]


async def only_event_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    """The event's span, once it ended (after the result is published and the offset committed)."""
    await eventually(lambda: event_spans(exporter))
    (span,) = event_spans(exporter)
    return span


def traceparent(record: Any) -> tuple[int, int]:
    """(trace id, span id) of a record's `traceparent` header."""
    (value,) = [v for k, v in record.headers if k == "traceparent"]
    _, trace_id, span_id, _ = value.decode().split("-")
    return int(trace_id, 16), int(span_id, 16)


def secrets_of(sandbox: Sandbox) -> list[str]:
    return [
        *sandbox.elements.issued_tokens(),
        sandbox.anva_token,
        sandbox.portal_token,
        sandbox.elements_secret,
    ]


async def test_the_event_span_continues_the_inputs_trace_with_a_child_span_per_http_call(
    traced_sandbox: Sandbox, exporter: InMemorySpanExporter
) -> None:
    sandbox = traced_sandbox
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    runtime = await sandbox.start_worker()

    with capture_logs(
        processors=[structlog.contextvars.merge_contextvars, add_trace_context]
    ) as logs:
        event_id = await sync(sandbox, customer.dossier_number)
        (result,) = await sandbox.read(sandbox.topics.results, 1)
        event = await only_event_span(exporter)

    assert event.name == "elements-sync process customer.changed"
    assert event.context is not None and event.parent is not None
    assert event.context.trace_id == INPUT_TRACE_ID
    assert (event.parent.span_id, event.parent.is_remote) == (INPUT_SPAN_ID, True)
    attributes = dict(event.attributes or {})
    assert attributes["cloudevents.event_id"] == event_id
    assert attributes["cloudevents.event_type"] == "customer.changed"
    assert attributes["elements_sync.dossier_number"] == customer.dossier_number
    assert attributes["elements_sync.status"] == "succeeded"
    assert attributes["messaging.destination.name"] == sandbox.topics.customer_events

    spans = exporter.get_finished_spans()
    children = [s for s in spans if s.parent and s.parent.span_id == event.context.span_id]
    assert {s.kind for s in children} == {SpanKind.CLIENT}
    by_api = {
        api: sum(1 for s in children if (s.attributes or {})["peer.service"] == api)
        for api in ("anva", "portal", "elements")
    }
    background = runtime.pipeline.metrics.registry.get_sample_value(
        "elements_sync_portal_page_reads_total", {"purpose": "refresh"}
    )
    assert by_api == {
        "anva": len(sandbox.anva.requests),
        "portal": len(sandbox.portal.requests) - int(background or 0),
        "elements": len(sandbox.elements.requests),
    }
    assert all(count > 0 for count in by_api.values())
    for span in spans:
        for value in (span.attributes or {}).values():
            assert "access_token=" not in str(value) and "?" not in str(value)
            assert not any(secret in str(value) for secret in secrets_of(sandbox))

    assert traceparent(result) == (INPUT_TRACE_ID, event.context.span_id)
    event_logs = [line for line in logs if line.get("event_id") == event_id]
    assert event_logs
    assert {line.get("trace_id") for line in event_logs} == {INPUT_TRACE_HEX}


async def test_a_failed_events_span_says_why_and_its_dead_letter_carries_the_trace(
    traced_sandbox: Sandbox, exporter: InMemorySpanExporter
) -> None:
    sandbox = traced_sandbox
    await sandbox.start_worker()

    await sync(sandbox, "999999")
    (result,) = await sandbox.read(sandbox.topics.results, 1)
    (dead,) = await sandbox.read(sandbox.topics.dead_letter, 1)
    event = await only_event_span(exporter)

    assert event.context is not None
    assert event.status.status_code == StatusCode.ERROR
    assert (event.attributes or {})["error.type"] == "customer_not_found"
    assert traceparent(dead) == traceparent(result) == (INPUT_TRACE_ID, event.context.span_id)


async def test_with_tracing_off_the_result_and_dead_letter_carry_the_inputs_traceparent(
    sandbox: Sandbox,
) -> None:
    await sandbox.start_worker()

    await sync(sandbox, "999999")
    (result,) = await sandbox.read(sandbox.topics.results, 1)
    (dead,) = await sandbox.read(sandbox.topics.dead_letter, 1)

    assert traceparent(result) == traceparent(dead) == (INPUT_TRACE_ID, INPUT_SPAN_ID)


class Collector:
    """An OTLP/HTTP collector that keeps the trace export requests it receives."""

    def __init__(self) -> None:
        self.exports: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.api_keys: list[str | None] = []
        self.app = Starlette(routes=[Route("/{path:path}", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        self.paths.append(request.url.path)
        self.api_keys.append(request.headers.get("x-api-key"))
        self.exports.append(ExportTraceServiceRequest.FromString(await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    def spans(self) -> list[tuple[str, Any]]:
        """(service.name, span) of every span received."""
        found = []
        for export in self.exports:
            for resource_spans in export.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    found += [(resource["service.name"], s) for s in scope_spans.spans]
        return found


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    receiving = Collector()
    async with serve(receiving.app) as url:
        yield receiving, url


async def test_with_an_otlp_endpoint_the_worker_exports_its_spans_there_with_its_headers(
    sandbox: Sandbox, collector: tuple[Collector, str]
) -> None:
    receiving, url = collector
    customer = seed_customer(sandbox.anva, sandbox.portal, 0)
    await sandbox.start_worker(
        tracing=TracingSettings(
            exporter_otlp_endpoint=url, exporter_otlp_headers=SecretStr("x-api-key=k%3D1")
        )
    )

    await sync(sandbox, customer.dossier_number)
    await sandbox.results(1)
    await sandbox.stop_worker()

    assert set(receiving.paths) == {"/v1/traces"}
    assert set(receiving.api_keys) == {"k=1"}
    spans = receiving.spans()
    (event,) = [s for _, s in spans if s.name == "elements-sync process customer.changed"]
    assert event.trace_id == INPUT_TRACE_ID.to_bytes(16, "big")
    assert event.parent_span_id == INPUT_SPAN_ID.to_bytes(8, "big")
    assert {service for service, _ in spans} == {"elements-sync"}
    assert sum(1 for _, s in spans if s.parent_span_id == event.span_id) > 0
