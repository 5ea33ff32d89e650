"""The metrics' names and labels: every upstream API by api and code, the forms ingress by
route and code, the build info, and the process and platform collectors."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from opentelemetry.trace import NoOpTracer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import __version__
from app.clients.observed import ObservedTransport
from app.metrics import Metrics
from app.settings import FormsSettings
from app.web.forms import forms_routes
from app.web.metered import RouteMetrics
from tests.unit.test_forms_http import IDS, DictPrefill, RecordingPublisher


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def upstream_client(
    metrics: Metrics, api: str, answer: Callable[[httpx.Request], httpx.Response]
) -> httpx.AsyncClient:
    transport = ObservedTransport(httpx.MockTransport(answer), api, metrics, NoOpTracer())
    return httpx.AsyncClient(transport=transport, base_url="https://upstream.example")


def test_build_info_names_the_running_version() -> None:
    metrics = Metrics()

    assert sample(metrics, "elements_sync_build_info", version=__version__) == 1.0


def test_the_process_and_platform_collectors_are_on_the_runtimes_own_registry() -> None:
    metrics = Metrics()

    resident = sample(metrics, "process_resident_memory_bytes")
    assert resident is not None and resident > 0
    assert sample(metrics, "process_cpu_seconds_total") is not None
    assert b"python_info{" in metrics.render()


async def test_upstream_requests_are_counted_by_api_and_status_code_and_timed_by_api() -> None:
    metrics = Metrics()
    statuses = iter([200, 200, 503])
    async with upstream_client(
        metrics, "Elements", lambda request: httpx.Response(next(statuses))
    ) as elements:
        for _ in range(3):
            await elements.get("/api/data/klantdossiers")
    async with upstream_client(metrics, "ANVA", lambda request: httpx.Response(404)) as anva:
        await anva.get("/account/mine")

    requests = "elements_sync_upstream_requests_total"
    assert sample(metrics, requests, api="elements", code="200") == 2.0
    assert sample(metrics, requests, api="elements", code="503") == 1.0
    assert sample(metrics, requests, api="anva", code="404") == 1.0
    assert sample(metrics, "elements_sync_upstream_request_seconds_count", api="elements") == 3.0
    assert sample(metrics, "elements_sync_upstream_request_seconds_count", api="anva") == 1.0


async def test_an_upstream_request_without_an_answer_is_counted_with_code_error() -> None:
    metrics = Metrics()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with upstream_client(metrics, "portal", refuse) as portal:
        with pytest.raises(httpx.ConnectError):
            await portal.get("/customers")

    assert sample(metrics, "elements_sync_upstream_requests_total", api="portal", code="error") == 1
    assert sample(metrics, "elements_sync_upstream_request_seconds_count", api="portal") == 1


def forms_app(metrics: Metrics, *extra: Route) -> Starlette:
    forms = forms_routes(
        RecordingPublisher(),
        DictPrefill({}),
        FormsSettings(shared_secret=None, allow_anonymous=True),
    )
    return Starlette(
        routes=[*forms, *extra],
        middleware=[
            Middleware(
                RouteMetrics,
                routes=[route.path for route in forms if isinstance(route, Route)],
                observe=metrics.observe_forms,
            )
        ],
    )


async def test_forms_requests_are_counted_by_route_and_status_code_and_timed_by_route() -> None:
    metrics = Metrics()
    transport = httpx.ASGITransport(app=forms_app(metrics))

    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        await http.post("/forms/submissions", headers=IDS, json={"email": "a@example.nl"})
        await http.post("/forms/submissions", headers={}, json={})
        await http.delete("/forms/submissions", headers=IDS)
        await http.get("/forms/prefill", headers=IDS)

    requests = "elements_sync_forms_requests_total"
    assert sample(metrics, requests, route="/forms/submissions", code="202") == 1.0
    assert sample(metrics, requests, route="/forms/submissions", code="400") == 1.0
    assert sample(metrics, requests, route="/forms/submissions", code="405") == 1.0
    assert sample(metrics, requests, route="/forms/prefill", code="200") == 1.0
    seconds = "elements_sync_forms_request_seconds_count"
    assert sample(metrics, seconds, route="/forms/submissions") == 3.0
    assert sample(metrics, seconds, route="/forms/prefill") == 1.0


async def test_paths_outside_the_forms_routes_get_no_label_of_their_own() -> None:
    metrics = Metrics()
    transport = httpx.ASGITransport(app=forms_app(metrics))

    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/forms/anything-an-attacker-invents", headers=IDS)

    assert answer.status_code == 404
    assert b"anything-an-attacker-invents" not in metrics.render()
    assert (
        sample(metrics, "elements_sync_forms_request_seconds_count", route="/forms/prefill") is None
    )


async def test_a_forms_request_whose_handler_raised_is_counted_as_500() -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("bug")

    metrics = Metrics()
    app = Starlette(
        routes=[Route("/forms/broken", broken)],
        middleware=[
            Middleware(RouteMetrics, routes=["/forms/broken"], observe=metrics.observe_forms)
        ],
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/forms/broken")

    assert answer.status_code == 500
    assert (
        sample(metrics, "elements_sync_forms_requests_total", route="/forms/broken", code="500")
        == 1
    )
