"""Tracing: a span per event, a child span per outbound HTTP call, W3C trace context via Kafka.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Off, the runtime gets OpenTelemetry's
no-op provider, whose spans record nothing but carry their parent's context: an input's
`traceparent` still reaches its result and dead letter unchanged, and the logs still name
its trace. Each runtime has a provider of its own (none is installed globally), so tests
with in-memory exporters and several runtimes can share a process, as with the metrics.

Only W3C `traceparent`/`tracestate` are read and written, never baggage: baggage holds
whatever an upstream producer put in it, which has no business travelling on to ANVA, the
portal or Elements.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import unquote

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app import __version__
from app.events import EVENT_TYPES, ResultData
from app.settings import TracingSettings

TRACER_NAME = "elements-sync"
EVENT_SPAN_NAME = "elements-sync process"
DOSSIER_NUMBER = "elements_sync.dossier_number"
OTLP_TRACES_PATH = "v1/traces"

_W3C = TraceContextTextMapPropagator()


def traces_endpoint(base_url: str) -> str:
    """The OTLP/HTTP traces URL for a base endpoint, as the specification derives it."""
    return f"{base_url.rstrip('/')}/{OTLP_TRACES_PATH}"


def build_tracer_provider(settings: TracingSettings) -> TracerProvider:
    """An OTLP/HTTP exporting provider when an endpoint is configured, else the no-op one."""
    if settings.exporter_otlp_endpoint is None:
        return trace.NoOpTracerProvider()
    resource = Resource.create({SERVICE_NAME: settings.service_name, SERVICE_VERSION: __version__})
    provider = SdkTracerProvider(resource=resource)
    headers = settings.exporter_otlp_headers
    exporter = OTLPSpanExporter(
        endpoint=traces_endpoint(str(settings.exporter_otlp_endpoint)),
        headers=otlp_headers(headers.get_secret_value()) if headers else None,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def otlp_headers(value: str) -> dict[str, str]:
    """`OTEL_EXPORTER_OTLP_HEADERS` as a mapping: `key=value` pairs, comma-separated, values
    URL-encoded; a pair without `=` is skipped, as the SDK itself does."""
    pairs = (item.partition("=") for item in value.split(","))
    return {key.strip(): unquote(val.strip()) for key, sep, val in pairs if sep and key.strip()}


async def shutdown_tracer_provider(provider: TracerProvider) -> None:
    """Export what is still queued; the SDK blocks while it does, so off the event loop."""
    if isinstance(provider, SdkTracerProvider):
        await asyncio.to_thread(provider.shutdown)


def parent_context(headers: Mapping[str, str]) -> Context:
    """The trace context a message or request names in its `traceparent`, if a valid one."""
    return _W3C.extract(dict(headers))


def trace_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the current span; empty when there is none."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier


def note_dossier_number(dossier_number: str | None) -> None:
    """Name the event's dossier on the current span, once the event has been read."""
    if dossier_number is not None:
        trace.get_current_span().set_attribute(DOSSIER_NUMBER, dossier_number)


def describe_outcome(span: Span, data: ResultData) -> None:
    """Name the event span after its type and record the outcome (status, error code).

    Only a known type goes into the name, so a rejected message cannot make span names
    unbounded; the error code, not its message, is the span status's description,
    because a message may quote what an upstream answered.
    """
    known_type = data.eventType if data.eventType in EVENT_TYPES else "unknown"
    span.update_name(f"{EVENT_SPAN_NAME} {known_type}")
    span.set_attribute("elements_sync.status", data.status)
    span.set_attribute("elements_sync.attempts", data.attempts)
    if data.eventId is not None:
        span.set_attribute("cloudevents.event_id", data.eventId)
    if data.eventType is not None:
        span.set_attribute("cloudevents.event_type", data.eventType)
    if data.dossierId is not None:
        span.set_attribute("elements_sync.dossier_id", data.dossierId)
    if data.error is not None:
        span.set_attribute("error.type", data.error.code)
        span.set_status(Status(StatusCode.ERROR, data.error.code))
