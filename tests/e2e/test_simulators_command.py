"""`python -m app simulators` as its own process, as the Docker demo's `simulators` service runs it."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.sandbox.worker_process import WorkerProcess, free_port, worker_environment
from app.sandbox.world import (
    ANVA_TOKEN,
    ELEMENTS_CLIENT_ID,
    ELEMENTS_ORGANISATION,
    ELEMENTS_SECRET,
    PORTAL_TOKEN,
    Sandbox,
)
from tests.conftest import SandboxFactory
from tests.e2e.helpers import sync

pytestmark = pytest.mark.e2e

LAST_SETTING = "ELEMENTS_RATE_LIMIT="
"""The last line printed once every simulator listens (the worker settings come last)."""


class SimulatorsProcess:
    def __init__(self) -> None:
        self.ports = {"anva": free_port(), "portal": free_port(), "elements": free_port()}
        self.announcement: list[str] = []
        self.process: asyncio.subprocess.Process | None = None

    def worker_settings(self) -> dict[str, str]:
        """The `NAME=value` lines of the announcement."""
        return dict(line.split("=", 1) for line in self.announcement if "=" in line)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "simulators",
            "--host",
            "127.0.0.1",
            "--anva-port",
            str(self.ports["anva"]),
            "--portal-port",
            str(self.ports["portal"]),
            "--elements-port",
            str(self.ports["elements"]),
            "--customers",
            "3",
            cwd=Path(__file__).parents[2],
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        async with asyncio.timeout(30):
            while not any(line.startswith(LAST_SETTING) for line in self.announcement):
                line = await self.process.stdout.readline()
                if not line:
                    raise RuntimeError(f"simulators exited {await self.process.wait()}")
                self.announcement.append(line.decode().rstrip("\n"))

    async def terminate(self) -> tuple[int, str]:
        """SIGTERM; the exit code and what was printed after the announcement."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            rest, _ = await self.process.communicate()
        assert self.process.returncode is not None
        return self.process.returncode, rest.decode()

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def simulators() -> AsyncIterator[SimulatorsProcess]:
    process = SimulatorsProcess()
    try:
        await process.start()
        yield process
    finally:
        await process.kill()


async def test_simulators_command_serves_the_three_apis_behind_their_credentials(
    simulators: SimulatorsProcess,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        anva = await http.get(
            f"{simulators.url('anva')}/api/account/mine",
            headers={"Authorization": f"Bearer {ANVA_TOKEN}"},
        )
        anva_without_token = await http.get(f"{simulators.url('anva')}/api/account/mine")
        portal = await http.get(
            f"{simulators.url('portal')}/v1/customers",
            headers={"Authorization": f"Bearer {PORTAL_TOKEN}"},
        )
        portal_wrong_token = await http.get(
            f"{simulators.url('portal')}/v1/customers",
            headers={"Authorization": "Bearer not-the-token"},
        )
        token = await http.post(
            f"{simulators.url('elements')}/oauth/access_token",
            auth=(ELEMENTS_CLIENT_ID, ELEMENTS_SECRET),
            data={
                "grant_type": "organisation",
                "organisation": ELEMENTS_ORGANISATION,
                "webservice": "data",
                "scope": "klantdossier.read klantdossier.write",
            },
        )
        dossiers = await http.get(
            f"{simulators.url('elements')}/api/data/klantdossiers",
            params={"access_token": token.json()["access_token"]},
        )

    assert anva.status_code == 200
    assert {"100000", "100001", "100002"} <= set(anva.text.replace('"', " ").split())
    assert anva_without_token.status_code == 401
    assert portal.status_code == 200
    assert [c["id"] for c in portal.json()["data"]] == [
        "cst_000000000000",
        "cst_000000000001",
        "cst_000000000002",
    ]
    assert portal_wrong_token.status_code == 401
    assert token.status_code == 200
    assert dossiers.status_code == 200


async def test_simulators_command_prints_the_settings_a_worker_needs(
    simulators: SimulatorsProcess,
) -> None:
    printed = set(simulators.announcement)

    assert {
        f"ANVA_BASE_URL={simulators.url('anva')}/api",
        f"ANVA_TOKEN={ANVA_TOKEN}",
        f"PORTAL_BASE_URL={simulators.url('portal')}/v1",
        f"PORTAL_TOKEN={PORTAL_TOKEN}",
        f"ELEMENTS_BASE_URL={simulators.url('elements')}",
        f"ELEMENTS_CLIENT_ID={ELEMENTS_CLIENT_ID}",
        f"ELEMENTS_CLIENT_SECRET={ELEMENTS_SECRET}",
        f"ELEMENTS_ORGANISATION={ELEMENTS_ORGANISATION}",
    } <= printed
    assert "  100002  cst_000000000002  zakelijk" in printed


async def test_simulators_command_stops_on_sigterm_with_exit_code_zero(
    simulators: SimulatorsProcess,
) -> None:
    status, output = await simulators.terminate()

    assert (status, output) == (0, "")
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"{simulators.url('anva')}/api/account/mine")


async def test_a_worker_set_up_as_the_simulators_say_syncs_a_sample_customer(
    simulators: SimulatorsProcess, make_sandbox: SandboxFactory
) -> None:
    """The Docker demo's wiring without Docker: worker and simulators as separate processes."""
    sandbox: Sandbox = await make_sandbox()
    env = worker_environment(sandbox.settings(), **simulators.worker_settings())

    async with WorkerProcess(env):
        await sync(sandbox, "100001")
        [result] = await sandbox.results(1, timeout_s=60)

    assert (result.data.status, result.subject) == ("succeeded", "100001")
    assert [op.path for op in result.data.operations][:1] == ["/api/data/klantdossiers"]
    assert sandbox.elements.requests == [], "the sandbox's own Elements was asked"
