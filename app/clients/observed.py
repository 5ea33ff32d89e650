"""What each outbound request leaves for operators: a client span and the upstream metrics.

Observed at the transport, like `HealthTransport`, so every request of every client is
seen alike (token requests, probes and retries included), and the time is the wire's
alone: the Elements limiter's wait has its own histogram. The time runs until the
answer's headers arrive; bodies here are small JSON documents.

A span never carries the query string or credentials: Elements takes its access token
as the `access_token` query parameter, so `url.full` is scheme, host, port and path only,
and a transport error is recorded by its type, never its text.
"""

from __future__ import annotations

import time

import httpx
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from app.metrics import Metrics
from app.tracing import trace_headers

TRANSPORT_ERROR_CODE = "error"
"""The `code` label of a request that got no answer (timeout, refused, reset)."""


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def request_attributes(request: httpx.Request, api: str) -> dict[str, AttributeValue]:
    """The span attributes of a request (OpenTelemetry's HTTP client conventions)."""
    url = request.url
    port = url.port or _default_port(url.scheme)
    return {
        "http.request.method": request.method,
        "url.full": f"{url.scheme}://{url.host}:{port}{url.path}",
        "server.address": url.host,
        "server.port": port,
        "peer.service": api,
    }


class ObservedTransport(httpx.AsyncBaseTransport):
    """Wraps a transport: a CLIENT span and the request metrics for each request to `api`."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, api: str, metrics: Metrics, tracer: Tracer
    ) -> None:
        self._inner = inner
        self._api = api.lower()
        self._metrics = metrics
        self._tracer = tracer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        with self._tracer.start_as_current_span(
            request.method,
            kind=SpanKind.CLIENT,
            attributes=request_attributes(request, self._api),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if span.is_recording():
                request.headers.update(trace_headers())
            try:
                response = await self._inner.handle_async_request(request)
            except Exception as error:
                self._observe(span, TRANSPORT_ERROR_CODE, type(error).__name__, started)
                raise
            status = response.status_code
            span.set_attribute("http.response.status_code", status)
            self._observe(span, str(status), str(status) if status >= 400 else None, started)
            return response

    def _observe(self, span: Span, code: str, error_type: str | None, started: float) -> None:
        self._metrics.observe_upstream(self._api, code, time.perf_counter() - started)
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            span.set_status(Status(StatusCode.ERROR))

    async def aclose(self) -> None:
        await self._inner.aclose()
