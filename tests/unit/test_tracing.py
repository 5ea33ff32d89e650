"""Tracing without Kafka: the outbound HTTP spans, the event span's description, the trace
context in Kafka headers and in the logs, and the provider the settings choose."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode
from structlog.testing import capture_logs

from app.clients.observed import ObservedTransport
from app.events import ResultData, ResultError
from app.logs import add_trace_context
from app.metrics import Metrics
from app.settings import TracingSettings, environment_names
from app.tracing import (
    build_tracer_provider,
    describe_outcome,
    otlp_headers,
    parent_context,
    trace_headers,
    traces_endpoint,
)

INPUT_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
INPUT_SPAN_ID = 0x00F067AA0BA902B7
INPUT_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TOKEN = "t0ken-that-must-not-leak"

log = structlog.get_logger(__name__)


def traceparent_of(context: trace.SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def traced_client(
    provider: TracerProvider, answer: Callable[[httpx.Request], httpx.Response]
) -> httpx.AsyncClient:
    transport = ObservedTransport(
        httpx.MockTransport(answer), "Elements", Metrics(), provider.get_tracer("test")
    )
    return httpx.AsyncClient(transport=transport, base_url="https://tenant.example.nl")


async def test_an_http_call_is_a_client_span_under_the_current_one_without_its_query_string(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    async with traced_client(provider, answer) as http:
        with provider.get_tracer("test").start_as_current_span("event") as event:
            await http.get(
                "/api/data/klantdossiers", params={"access_token": TOKEN, "relatienummer": "1"}
            )

    (span,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert span.name == "GET"
    assert span.parent is not None
    assert span.parent.span_id == event.get_span_context().span_id
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.full": "https://tenant.example.nl:443/api/data/klantdossiers",
        "server.address": "tenant.example.nl",
        "server.port": 443,
        "peer.service": "elements",
        "http.response.status_code": 200,
    }
    assert span.status.status_code == StatusCode.UNSET
    assert sent[0].url.params["access_token"] == TOKEN
    assert sent[0].headers["traceparent"] == traceparent_of(span.get_span_context())


async def test_an_error_answer_or_no_answer_marks_the_http_span_failed_by_code_or_type_only(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    answers = iter([httpx.Response(503), None])

    def answer(request: httpx.Request) -> httpx.Response:
        response = next(answers)
        if response is None:
            raise httpx.ConnectError(f"cannot reach {request.url}", request=request)
        return response

    async with traced_client(provider, answer) as http:
        await http.get("/api/data/klantdossiers", params={"access_token": TOKEN})
        with pytest.raises(httpx.ConnectError):
            await http.get("/api/data/klantdossiers", params={"access_token": TOKEN})

    unavailable, unreachable = exporter.get_finished_spans()
    assert unavailable.status.status_code == StatusCode.ERROR
    assert (unavailable.attributes or {})["error.type"] == "503"
    assert unreachable.status.status_code == StatusCode.ERROR
    assert (unreachable.attributes or {})["error.type"] == "ConnectError"
    assert unreachable.events == ()
    for span in (unavailable, unreachable):
        assert all(TOKEN not in str(value) for value in (span.attributes or {}).values())


async def test_without_tracing_no_trace_header_is_sent_upstream() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    transport = ObservedTransport(
        httpx.MockTransport(answer), "ANVA", Metrics(), NoOpTracerProvider().get_tracer("t")
    )
    async with httpx.AsyncClient(transport=transport, base_url="https://anva.example") as http:
        with trace.use_span(trace.NonRecordingSpan(input_span_context())):
            await http.get("/account/mine")

    assert "traceparent" not in sent[0].headers


def input_span_context() -> trace.SpanContext:
    return trace.get_current_span(
        parent_context({"traceparent": INPUT_TRACEPARENT})
    ).get_span_context()


def test_a_valid_traceparent_header_names_the_parent_and_a_malformed_one_is_ignored() -> None:
    parent = input_span_context()
    malformed = trace.get_current_span(parent_context({"traceparent": "00-zz-01"}))

    assert (parent.trace_id, parent.span_id, parent.is_remote) == (
        INPUT_TRACE_ID,
        INPUT_SPAN_ID,
        True,
    )
    assert not malformed.get_span_context().is_valid


def test_trace_headers_carry_the_current_span_and_nothing_outside_one(
    provider: TracerProvider,
) -> None:
    with provider.get_tracer("test").start_as_current_span("event") as span:
        inside = trace_headers()

    assert inside == {"traceparent": traceparent_of(span.get_span_context())}
    assert trace_headers() == {}


def test_with_tracing_off_the_inputs_trace_context_is_carried_unchanged() -> None:
    tracer = NoOpTracerProvider().get_tracer("test")
    parent = parent_context({"traceparent": INPUT_TRACEPARENT})

    with tracer.start_as_current_span("event", context=parent):
        carried = trace_headers()

    assert carried == {"traceparent": INPUT_TRACEPARENT}


@pytest.mark.parametrize(
    ("data", "name", "status"),
    [
        (
            ResultData(
                eventId="e-1", eventType="customer.changed", status="succeeded", dossierId=7
            ),
            "elements-sync process customer.changed",
            StatusCode.UNSET,
        ),
        (
            ResultData(
                eventId="e-2",
                eventType="order.placed",
                status="rejected",
                error=ResultError(code="unknown_type", message="…", retryable=False),
            ),
            "elements-sync process unknown",
            StatusCode.ERROR,
        ),
    ],
    ids=["succeeded", "rejected-unknown-type"],
)
def test_the_event_span_is_named_after_a_known_type_and_records_the_outcome(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    data: ResultData,
    name: str,
    status: StatusCode,
) -> None:
    with provider.get_tracer("test").start_as_current_span("elements-sync process") as span:
        describe_outcome(span, data)

    (finished,) = exporter.get_finished_spans()
    attributes = dict(finished.attributes or {})
    assert finished.name == name
    assert finished.status.status_code == status
    assert attributes["cloudevents.event_id"] == data.eventId
    assert attributes["cloudevents.event_type"] == data.eventType
    assert attributes["elements_sync.status"] == data.status
    assert attributes.get("error.type") == (data.error.code if data.error else None)
    assert attributes.get("elements_sync.dossier_id") == data.dossierId


def test_a_log_line_inside_a_span_carries_its_trace_and_span_ids(provider: TracerProvider) -> None:
    with capture_logs(processors=[add_trace_context]) as logs:
        with provider.get_tracer("test").start_as_current_span("event") as span:
            log.info("inside")
        log.info("outside")

    inside, outside = logs
    context = span.get_span_context()
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in outside


def test_tracing_is_off_without_an_endpoint_and_exports_to_its_traces_path_with_one() -> None:
    assert isinstance(build_tracer_provider(TracingSettings()), NoOpTracerProvider)
    assert traces_endpoint("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_endpoint("http://collector:4318/") == "http://collector:4318/v1/traces"


def test_the_otlp_endpoint_and_service_name_are_read_from_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "elements-sync-acme")

    settings = TracingSettings()

    assert str(settings.exporter_otlp_endpoint) == "http://collector:4318/"
    assert settings.service_name == "elements-sync-acme"
    assert "OTEL_" in environment_names()


def test_otlp_headers_are_comma_separated_pairs_with_url_encoded_values() -> None:
    assert otlp_headers("x-api-key=k%3D1, tenant = acme ,broken,=x") == {
        "x-api-key": "k=1",
        "tenant": "acme",
    }


def test_the_otlp_headers_are_a_secret_read_from_their_standard_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret")

    settings = TracingSettings()

    assert settings.exporter_otlp_headers is not None
    assert settings.exporter_otlp_headers.get_secret_value() == "x-api-key=secret"
    assert "secret" not in repr(settings)
