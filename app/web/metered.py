"""Request counts and latency of chosen routes, measured around the whole app.

Around the app rather than in the handlers, so that what Starlette answers itself (a
405 for another method) is counted too. Only the given paths are labelled: the forms
ingress faces the internet, and a label per path anyone can invent would grow without
bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Observe = Callable[[str, str, float], None]
"""(route, code, seconds)"""


class RouteMetrics:
    """ASGI middleware: reports each HTTP request to one of `routes` with its status and time.

    A request whose handler raised before answering is reported as 500, what the server
    then answers.
    """

    def __init__(self, app: ASGIApp, *, routes: Iterable[str], observe: Observe) -> None:
        self._app = app
        self._routes = frozenset(routes)
        self._observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = scope.get("path") if scope["type"] == "http" else None
        if route not in self._routes:
            await self._app(scope, receive, send)
            return
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self._app(scope, receive, send_noting_status)
        finally:
            self._observe(str(route), str(status), time.perf_counter() - started)
