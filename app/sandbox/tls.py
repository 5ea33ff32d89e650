"""A Kafka that speaks only TLS, on this machine: test certificates and a TLS terminator.

tansu's own `--cert`/`--key` listener does not complete a handshake, so the embedded
broker listens in plaintext on a private port and advertises the terminator's port:
every client connection, the bootstrap one and those to the advertised address, then
goes through TLS, as against a managed Kafka. The certificates come from `openssl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

CERTIFICATE_DAYS = "2"
EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
PIPE_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Certificates:
    """A private CA, a broker certificate for 127.0.0.1 and a client certificate it signed."""

    ca_file: Path
    broker_cert_file: Path
    broker_key_file: Path
    client_cert_file: Path
    client_key_file: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _issue(directory: Path, name: str, subject: str, extensions: str) -> tuple[Path, Path]:
    """A key and a certificate signed by the CA in `directory`."""
    key, request, cert = (directory / f"{name}{ext}" for ext in (".key", ".csr", ".pem"))
    (directory / f"{name}.ext").write_text(extensions)
    _openssl("req", *EC_KEY, "-keyout", key, "-out", request, "-subj", subject, cwd=directory)
    _openssl(
        "x509", "-req", "-in", request, "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", CERTIFICATE_DAYS, "-out", cert,
        "-extfile", f"{name}.ext", cwd=directory,
    )  # fmt: skip
    return cert, key


def issue_certificates(directory: Path) -> Certificates:
    """Write a fresh CA and the broker's and a client's certificates into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", *EC_KEY, "-keyout", "ca.key", "-out", "ca.pem",
        "-days", CERTIFICATE_DAYS, "-subj", "/CN=elements-sync sandbox CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory,
    )  # fmt: skip
    leaf = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
    broker_cert, broker_key = _issue(
        directory,
        "broker",
        "/CN=127.0.0.1",
        leaf + "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    client_cert, client_key = _issue(
        directory, "client", "/CN=elements-sync", leaf + "extendedKeyUsage=clientAuth\n"
    )
    return Certificates(directory / "ca.pem", broker_cert, broker_key, client_cert, client_key)


@dataclass(frozen=True)
class BrokerTls:
    """The broker's side of TLS; `client_ca_file` set requires clients to show a certificate."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file is not None:
            context.load_verify_locations(cafile=self.client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


class TlsTerminator:
    """Accepts TLS on `port` and pipes each connection's bytes to the plaintext backend.

    Connections are kept in a set and closed on `stop()`, so a stopped terminator leaves
    no task or transport behind.
    """

    def __init__(self, tls: BrokerTls, *, host: str, port: int, backend_port: int) -> None:
        self._context = tls.server_context()
        self._host = host
        self._port = port
        self._backend_port = backend_port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, ssl=self._context
        )

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._pipe_to_backend(reader, writer)
        finally:
            self._connections.discard(task)
            await _close(writer)

    async def _pipe_to_backend(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            backend_reader, backend_writer = await asyncio.open_connection(
                self._host, self._backend_port
            )
        except OSError:
            return  # the broker is down: the client sees its connection closed
        try:
            pipes = [
                asyncio.create_task(_pipe(reader, backend_writer)),
                asyncio.create_task(_pipe(backend_reader, writer)),
            ]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            await _close(backend_writer)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None


async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while chunk := await source.read(PIPE_CHUNK_BYTES):
            target.write(chunk)
            await target.drain()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
