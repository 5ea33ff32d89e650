"""`serve` puts an ASGI app behind a real loopback socket and takes it down cleanly."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.web import server as serve_module
from app.web.server import serve


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"hello from {request.url.port}")


APP = Starlette(routes=[Route("/hello", hello)])


async def test_serve_answers_over_loopback_on_a_free_port() -> None:
    async with serve(APP) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get("/hello")

    assert base_url.startswith("http://127.0.0.1:")
    port = int(base_url.rsplit(":", 1)[1])
    assert port > 0
    assert response.status_code == 200
    assert response.text == f"hello from {port}"


async def test_two_servers_get_different_ports() -> None:
    async with serve(APP) as first, serve(APP) as second:
        assert first != second


async def test_serve_stops_listening_on_exit() -> None:
    async with serve(APP) as base_url:
        pass

    async with httpx.AsyncClient(base_url=base_url) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/hello")


async def test_exit_does_not_wait_for_an_idle_keepalive_connection() -> None:
    async with httpx.AsyncClient() as client:
        async with asyncio.timeout(2):
            async with serve(APP) as base_url:
                await client.get(f"{base_url}/hello")  # leaves a pooled keep-alive connection


async def test_exit_forces_down_a_request_that_outlasts_the_grace_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serve_module, "SHUTDOWN_GRACE_PERIOD_S", 0.1)
    handler_started = asyncio.Event()

    async def stuck(request: Request) -> PlainTextResponse:
        handler_started.set()
        await asyncio.sleep(60)
        return PlainTextResponse("too late")

    async with httpx.AsyncClient() as client:
        async with asyncio.timeout(2):
            async with serve(Starlette(routes=[Route("/stuck", stuck)])) as base_url:
                in_flight = asyncio.create_task(client.get(f"{base_url}/stuck"))
                await handler_started.wait()
        in_flight.cancel()
        with pytest.raises(asyncio.CancelledError):
            await in_flight
