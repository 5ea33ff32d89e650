"""Small assertions shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.partitioner import murmur2

from app.sandbox.simulators.seed import SampleCustomer, sample_customer, seed_customer
from app.sandbox.world import Sandbox

ROOT = Path(__file__).parents[2]

ADRES_FORM = {"X-Customer-Id": "cst_000000000000", "X-Form-Id": "frm_adres"}
"""The headers of sample customer 0's address form, as the portal posts it."""


def only_dossier(sandbox: Sandbox, dossier_number: str) -> dict[str, Any]:
    matching = [d for d in sandbox.elements.dossiers() if d["relatienummer"] == dossier_number]
    assert len(matching) == 1, f"expected one dossier {dossier_number}, found {len(matching)}"
    return matching[0]


def only_klant(dossier: dict[str, Any]) -> dict[str, Any]:
    klanten = dossier["klanten"]["particulier"] + dossier["klanten"]["zakelijk"]
    assert len(klanten) == 1, f"expected one klant, found {len(klanten)}"
    return klanten[0]


async def sync(sandbox: Sandbox, dossier_number: str, *, event_id: str | None = None) -> str:
    return await sandbox.publish(
        "customer.changed", {"dossierNumber": dossier_number}, key=dossier_number, event_id=event_id
    )


async def eventually(condition: Callable[[], object], *, timeout_s: float = 30.0) -> None:
    """Wait until `condition()` holds: for state of other components that signal nothing."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def synced_customer(sandbox: Sandbox, index: int = 0) -> SampleCustomer:
    """A sample customer, a running worker, and the customer's first sync done."""
    customer = seed_customer(sandbox.anva, sandbox.portal, index)
    await sandbox.start_worker()
    await sync(sandbox, customer.dossier_number)
    await sandbox.results(1)
    return customer


def standaard_adres(sandbox: Sandbox, dossier_number: str) -> tuple[str, str, str]:
    """Straat, nummer and plaatsnaam of the dossier's standaard correspondentieadres."""
    adres = only_dossier(sandbox, dossier_number)["_embedded"]["standaardcorrespondentieadres"]
    return adres["straat"], adres["nummer"], adres["plaatsnaam"]


def split_pairs(count: int, *, partitions: int = 4) -> list[int]:
    """Sample customers whose form (keyed by portal id) and customer events (keyed by dossier
    number) land on different replicas: aiokafka's round-robin assignor gives two members
    the even and the odd partitions of each topic, and the producer's partition is murmur2."""

    def parity(key: str) -> int:
        return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions % 2

    split = (
        n
        for n in itertools.count()
        if parity(sample_customer(n).dossier_number) != parity(sample_customer(n).portal_id)
    )
    return list(itertools.islice(split, count))


@dataclass(frozen=True)
class Ran:
    """How a `python -m app` process ended."""

    code: int
    out: str
    err: str


async def run_app(env: dict[str, str], *args: str, timeout_s: float = 60.0) -> Ran:
    """`python -m app ARGS` as its own process, configured by `env` as in production."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    assert process.returncode is not None
    return Ran(process.returncode, stdout.decode(), stderr.decode())
