"""The worker's HTTP side: portal forms, health, readiness, metrics and the AsyncAPI document."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.application import Runtime
from app.web.forms import forms_routes
from app.web.metered import RouteMetrics

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def http_app(runtime: Runtime) -> Starlette:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        readiness = await runtime.readiness()
        return JSONResponse(readiness.body(), status_code=readiness.status_code)

    async def metrics(request: Request) -> Response:
        return Response(runtime.pipeline.metrics.render(), media_type=PROMETHEUS_TEXT)

    async def asyncapi(request: Request) -> Response:
        return Response(runtime.asyncapi_json(), media_type="application/json")

    forms = forms_routes(runtime.forms, runtime.pipeline.prefill, runtime.settings.forms)
    forms_paths = [route.path for route in forms if isinstance(route, Route)]
    runtime.pipeline.metrics.track_forms(forms_paths)
    return Starlette(
        routes=[
            *forms,
            Route("/asyncapi.json", asyncapi, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                RouteMetrics,
                routes=forms_paths,
                observe=runtime.pipeline.metrics.observe_forms,
            )
        ],
    )
