"""`python -m app worker` as its own process, configured by environment like in production.

The end-to-end tests run it to prove what only a process shows (signals, exit codes,
SIGKILL of one of two replicas), `bench-scale` and `bench-state` to read its memory and CPU
time, and `bench --replicas` to share one limit between several; `source` runs another
checkout's worker (same interpreter), so a benchmark can measure the code before a change.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import SecretStr

from app.settings import CONTRACT_TENANT_IDS, KafkaSettings, Settings, environment_names


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def worker_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The contract's variables for `settings`, over a copy of this process's environment."""
    kafka, topics, elements = settings.kafka, settings.topics, settings.elements
    env = {k: v for k, v in os.environ.items() if not k.startswith(environment_names())}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
        KAFKA_CLIENT_ID=kafka.client_id,
        KAFKA_SECURITY_PROTOCOL=kafka.security_protocol,
        KAFKA_SASL_MECHANISM=kafka.sasl_mechanism,
        KAFKA_CREATE_TOPICS=str(kafka.create_topics).lower(),
        KAFKA_GROUP_ID=kafka.group_id,
        KAFKA_ENABLE_IDEMPOTENCE="false",
        KAFKA_MAX_BATCH_BYTES=str(kafka.max_batch_bytes),
        KAFKA_SESSION_TIMEOUT_MS=str(kafka.session_timeout_ms),
        KAFKA_HEARTBEAT_INTERVAL_MS=str(kafka.heartbeat_interval_ms),
        KAFKA_TOPIC_PARTITIONS=str(kafka.topic_partitions),
        TOPIC_CUSTOMER_EVENTS=topics.customer_events,
        TOPIC_CONTRACT_EVENTS=topics.contract_events,
        TOPIC_FORM_SUBMISSIONS=topics.form_submissions,
        TOPIC_RESULTS=topics.results,
        TOPIC_DEAD_LETTER=topics.dead_letter,
        TOPIC_BACKFILL=topics.backfill,
        TOPIC_STATE=topics.state,
        ANVA_BASE_URL=str(settings.anva.base_url),
        ANVA_TOKEN=settings.anva.token.get_secret_value(),
        PORTAL_BASE_URL=str(settings.portal.base_url),
        PORTAL_TOKEN=settings.portal.token.get_secret_value(),
        ELEMENTS_BASE_URL=str(elements.base_url),
        ELEMENTS_CLIENT_ID=elements.client_id,
        ELEMENTS_CLIENT_SECRET=elements.client_secret.get_secret_value(),
        ELEMENTS_ORGANISATION=elements.organisation,
        ELEMENTS_KANTOOR_ID=str(elements.kantoor_id),
        ELEMENTS_DOSSIERSTATUS_ID=str(elements.dossierstatus_id),
        ELEMENTS_CONTRACT_STATUS_MAP=json.dumps(settings.contracts.status_map),
        ELEMENTS_RATE_LIMIT=str(elements.rate_limit),
        ELEMENTS_DAILY_LIMIT=str(elements.daily_limit),
        HTTP_PORT=str(free_port()),
        LOG_FORMAT="json",
        LOG_LEVEL="DEBUG",
        SHUTDOWN_GRACE_PERIOD_S="10",
    )
    env.update(
        {
            f"ELEMENTS_CONTRACT_{name.upper()}": str(getattr(settings.contracts, name))
            for name in CONTRACT_TENANT_IDS
        }
    )
    env.update({name: value for name, value in _optional_kafka(kafka).items() if value})
    if elements.limiter_redis_url is not None:
        env["ELEMENTS_LIMITER_REDIS_URL"] = elements.limiter_redis_url.get_secret_value()
    env.update(extra)
    return env


def _text_or_none(value: object) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return None if value is None else str(value)


def _optional_kafka(kafka: KafkaSettings) -> dict[str, str | None]:
    """The Kafka variables that have no default, as the settings give them."""
    return {
        "KAFKA_SASL_USERNAME": kafka.sasl_username,
        "KAFKA_SASL_PASSWORD": _text_or_none(kafka.sasl_password),
        "KAFKA_SSL_CA_FILE": _text_or_none(kafka.ssl_ca_file),
        "KAFKA_SSL_CERT_FILE": _text_or_none(kafka.ssl_cert_file),
        "KAFKA_SSL_KEY_FILE": _text_or_none(kafka.ssl_key_file),
        "KAFKA_REPLICATION_FACTOR": _text_or_none(kafka.replication_factor),
    }


@asynccontextmanager
async def workers_sharing_redis(
    settings: Settings, redis_url: str, replicas: int, **extra: str
) -> AsyncIterator[list[WorkerProcess]]:
    """`replicas` worker processes on `settings`, sharing the limit and the dossier leases
    through the Redis at `redis_url`: started and ready for the block, killed after it."""
    shared = settings.model_copy(deep=True)
    shared.elements.limiter_redis_url = SecretStr(redis_url)
    workers = [WorkerProcess(worker_environment(shared, **extra)) for _ in range(replicas)]
    try:
        await asyncio.gather(*(worker.start() for worker in workers))
        yield workers
    finally:
        for worker in workers:
            await worker.close()


class WorkerProcess:
    def __init__(self, env: dict[str, str], *, source: Path | None = None) -> None:
        self.source = source or Path(__file__).parents[2]
        self.env = env if source is None else {**env, "PYTHONPATH": str(source)}
        self.url = f"http://127.0.0.1:{env['HTTP_PORT']}"
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process object
        self._process: asyncio.subprocess.Process | None = None

    async def start(self, *, ready_timeout_s: float = 30.0) -> None:
        """Start the process and wait until `/readyz` answers 200."""
        await self.spawn()
        await self.until_status("/readyz", 200, timeout_s=ready_timeout_s)

    async def spawn(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "worker",
            env=self.env,
            cwd=self.source,
            stdout=self._log,
            stderr=self._log,
        )

    async def until_status(self, path: str, status: int, *, timeout_s: float) -> None:
        assert self._process is not None, "spawn the worker first"
        async with httpx.AsyncClient(base_url=self.url) as http, asyncio.timeout(timeout_s):
            while True:
                if self._process.returncode is not None:
                    raise RuntimeError(
                        f"worker exited {self._process.returncode}: {self.output()[-2000:]}"
                    )
                try:
                    if (await http.get(path)).status_code == status:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)

    def _running(self) -> asyncio.subprocess.Process:
        assert self._process is not None, "start the worker first"
        return self._process

    async def kill(self) -> None:
        process = self._running()
        process.send_signal(signal.SIGKILL)
        await process.wait()

    async def terminate(self, *, timeout_s: float = 30.0) -> int:
        process = self._running()
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout_s):
            return await process.wait()

    def _status_bytes(self, name: str) -> int:
        status = Path(f"/proc/{self._running().pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith(f"{name}:"))
        return int(line.split()[1]) * 1024

    def peak_rss_bytes(self) -> int:
        """The process's peak resident set (`VmHWM` in /proc), read while it still runs."""
        return self._status_bytes("VmHWM")

    def resident_bytes(self) -> int:
        """The process's resident set now (`VmRSS`)."""
        return self._status_bytes("VmRSS")

    def cpu_s(self) -> float:
        """CPU time the process used so far, user and system (/proc/<pid>/stat)."""
        stat = Path(f"/proc/{self._running().pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    async def __aenter__(self) -> WorkerProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Kill the process if it still runs, and drop its log."""
        process = self._process
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        self._log.close()
