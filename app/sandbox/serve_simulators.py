"""`python -m app simulators`: the three API simulators as a server of their own.

The Docker demo (`compose.yaml`) runs the worker in one container and the simulators in
another, so here they listen on fixed ports, seeded with sample customers, and say which
settings a worker needs to reach them. They keep everything in memory (what they received
included), which suits a demo, not a long soak.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from app.sandbox.simulators.anva import AnvaSimulator
from app.sandbox.simulators.elements import ElementsSimulator
from app.sandbox.simulators.portal import PortalSimulator
from app.sandbox.simulators.seed import SampleCustomer, seed_customers
from app.sandbox.tenant import tenant_environment
from app.sandbox.world import (
    ANVA_TOKEN,
    ELEMENTS_CLIENT_ID,
    ELEMENTS_ORGANISATION,
    ELEMENTS_SECRET,
    PORTAL_TOKEN,
)
from app.web.server import serve


@dataclass(frozen=True)
class SimulatorPorts:
    anva: int
    portal: int
    elements: int


def worker_settings(
    host: str, ports: SimulatorPorts, *, elements_rate_limit: int
) -> dict[str, str]:
    """The worker's variables that point it at simulators reachable as `host`."""
    return {
        "ANVA_BASE_URL": f"http://{host}:{ports.anva}/api",
        "ANVA_TOKEN": ANVA_TOKEN,
        "PORTAL_BASE_URL": f"http://{host}:{ports.portal}/v1",
        "PORTAL_TOKEN": PORTAL_TOKEN,
        "ELEMENTS_BASE_URL": f"http://{host}:{ports.elements}",
        "ELEMENTS_CLIENT_ID": ELEMENTS_CLIENT_ID,
        "ELEMENTS_CLIENT_SECRET": ELEMENTS_SECRET,
        "ELEMENTS_ORGANISATION": ELEMENTS_ORGANISATION,
        **tenant_environment(),
        "ELEMENTS_RATE_LIMIT": str(elements_rate_limit),
    }


def _announcement(settings: dict[str, str], customers: list[SampleCustomer]) -> str:
    lines = [f"{len(customers)} sample customers (dossier number, portal customer id, kind):"]
    lines += [
        f"  {c.dossier_number}  {c.portal_id}  {'zakelijk' if c.is_business else 'particulier'}"
        for c in customers
    ]
    lines.append("simulators serving; a worker reaches them with:")
    lines += [f"{name}={value}" for name, value in settings.items()]
    return "\n".join(lines)


@asynccontextmanager
async def simulators_served(
    *,
    host: str,
    ports: SimulatorPorts,
    advertised_host: str,
    customers: int,
    elements_rate_limit: int,
) -> AsyncIterator[dict[str, str]]:
    """Serve ANVA, the portal and Elements until the block ends; yields the worker's settings.

    Elements enforces `elements_rate_limit` requests per second, as the real one does.
    """
    anva = AnvaSimulator(token=ANVA_TOKEN)
    portal = PortalSimulator(token=PORTAL_TOKEN)
    elements = ElementsSimulator(
        client_id=ELEMENTS_CLIENT_ID,
        client_secret=ELEMENTS_SECRET,
        organisation=ELEMENTS_ORGANISATION,
        rate_limit=elements_rate_limit,
    )
    seeded = seed_customers(anva, portal, customers)
    async with AsyncExitStack() as servers:
        for app, port in (
            (anva.app, ports.anva),
            (portal.app, ports.portal),
            (elements.app, ports.elements),
        ):
            await servers.enter_async_context(serve(app, host=host, port=port))
        settings = worker_settings(advertised_host, ports, elements_rate_limit=elements_rate_limit)
        print(_announcement(settings, seeded), flush=True)
        yield settings
