"""`python -m app bench-costs`: Elements requests per kind of work, against the least the API allows.

Every kind of work runs on the core without Kafka (`app.sandbox.core`: the real clients
and pipeline on the simulators), and its requests are counted from what the Elements
simulator received under `/api/data` (token requests are not work). A count above the
API's least fails the command, so CI keeps the figures honest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.events import ContractChanged, CustomerChanged
from app.pipeline.contract import sync_contract
from app.pipeline.customer import sync_customer
from app.sandbox.core import Core, running_core
from app.sandbox.figures import markdown_table
from app.sandbox.simulators.seed import sample_customer
from app.state.memory import DossierMemory

MAX_AGE_S = 86_400.0
KNOWN_INDEX = 0
KNOWN = sample_customer(KNOWN_INDEX)
"""The customer the first kind of work creates and the others find."""


@dataclass(frozen=True)
class Kind:
    name: str
    least: int
    why: str
    run: Callable[[Core, WallClock], Awaitable[None]]


@dataclass
class WallClock:
    """The memory's clock, moved by hand to age a record past `STATE_MAX_AGE_S`."""

    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def changed(dossier_number: str) -> CustomerChanged:
    return CustomerChanged(dossierNumber=dossier_number)


def contract_changed(core: Core, dossier_number: str) -> ContractChanged:
    """A new contract of the dossier in ANVA, and its event."""
    return core.new_contract(dossier_number, f"K-{dossier_number}")


async def _measured(core: Core, work: Awaitable[object]) -> int:
    before = len(core.data_requests())
    await work
    return len(core.data_requests()) - before


async def _new_customer(core: Core, clock: WallClock) -> None:
    await sync_customer(core.context, changed(core.seed(KNOWN_INDEX).dossier_number))


async def _unchanged_fresh(core: Core, clock: WallClock) -> None:
    await sync_customer(core.context, changed(KNOWN.dossier_number))


async def _moved_fresh(core: Core, clock: WallClock) -> None:
    core.portal.update_customer(
        KNOWN.portal_id, address="Molenlaan 8", zipCode="3000 AB", city="Rotterdam"
    )
    await sync_customer(core.context, changed(KNOWN.dossier_number))


async def _unchanged_stale(core: Core, clock: WallClock) -> None:
    clock.now += MAX_AGE_S + 1
    await sync_customer(core.context, changed(KNOWN.dossier_number))


async def _new_contract_known(core: Core, clock: WallClock) -> None:
    await sync_contract(core.context, contract_changed(core, KNOWN.dossier_number))


async def _contract_first(core: Core, clock: WallClock) -> None:
    await sync_contract(core.context, contract_changed(core, core.seed(1).dossier_number))


KINDS = (
    Kind(
        "new customer",
        7,
        "search + klantdossier, klant, adres, standaard PATCH, e-mail, phone: no nested create",
        _new_customer,
    ),
    Kind(
        "unchanged, record fresh",
        0,
        "the record stands in for what the dossier holds",
        _unchanged_fresh,
    ),
    Kind(
        "moved, record fresh",
        3,
        "the identity read before writing, + adres and standaard PATCH",
        _moved_fresh,
    ),
    Kind(
        "unchanged, record older than STATE_MAX_AGE_S",
        3,
        "search + the remembered klant's e-mail and phone lists (klanten cannot be deleted "
        "through the API)",
        _unchanged_stale,
    ),
    Kind(
        "new contract, customer known",
        3,
        "the identity read + contract and registratie: the record says the contract is new",
        _new_contract_known,
    ),
    Kind(
        "contract before its customer",
        9,
        "the new customer's 7 + contract and registratie: no dossier, so no contract search",
        _contract_first,
    ),
)
"""In the order they run: each starts from what the ones before left (one core)."""


async def measure() -> list[tuple[Kind, int]]:
    clock = WallClock()
    memory = DossierMemory(max_age_s=MAX_AGE_S, clock=clock)
    counts: list[tuple[Kind, int]] = []
    async with running_core(memory=memory) as core:
        for kind in KINDS:
            counts.append((kind, await _measured(core, kind.run(core, clock))))
    return counts


def run_costs_bench() -> int:
    counts = asyncio.run(measure())
    rows = [
        (kind.name, str(count), str(kind.least), "ok" if count <= kind.least else "OVER", kind.why)
        for kind, count in counts
    ]
    print(markdown_table(("kind of work", "requests", "least", "", "why the least"), rows))
    return 0 if all(count <= kind.least for kind, count in counts) else 1
