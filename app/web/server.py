"""Serve an ASGI app for real on loopback, inside the running event loop.

End-to-end tests and the demo need the simulators behind real sockets (the service's HTTP clients
must not know they talk to a fake), without a thread or a process per server.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from starlette.types import ASGIApp

SHUTDOWN_GRACE_PERIOD_S = 5.0


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to the program hosting it.

    `uvicorn.Server.serve` installs its own handlers in the main thread; with several servers
    in one program they would swallow Ctrl-C and restore each other's handlers out of order.
    """

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serve(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Yields the base URL, e.g. 'http://127.0.0.1:54321'.

    The socket is bound before uvicorn starts so that `port=0` picks a free port whose number is
    known. On exit in-flight requests get `SHUTDOWN_GRACE_PERIOD_S`, then the server is forced down.
    """
    sock = socket.create_server((host, port))
    # Accepted connections inherit this. uvicorn does not set it on sockets it is handed, and
    # without it each answer waited ~40 ms for the client's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server = _EmbeddedServer(
        uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"uvicorn {host}:{port}")
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError(f"uvicorn stopped before serving on {host}:{port}")
            await asyncio.sleep(0.005)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), SHUTDOWN_GRACE_PERIOD_S)
        except TimeoutError:
            server.force_exit = True
            await task
        finally:
            sock.close()
