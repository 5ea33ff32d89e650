"""Where a plan starts, and what is remembered once it is applied.

A dossier whose record is trusted (`DossierMemory.trusted`) is planned against the
record, with no read of Elements but for a list the record does not know and the plan
needs; any other is read from Elements, and its record then counts from that read.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.pipeline.apply import Applied
from app.pipeline.context import SyncContext
from app.pipeline.current import complete, read_dossier
from app.pipeline.model import DesiredCustomer, DossierState
from app.state.record import (
    DossierRecord,
    PortalLocator,
    record_of,
    remembered_state,
    state_after,
)


@dataclass
class Known:
    """The dossier a plan starts on, when it was read from Elements, and its record before."""

    current: DossierState | None
    read_at: float
    previous: DossierRecord | None


async def known_dossier(context: SyncContext, wanted: DesiredCustomer) -> Known:
    memory = context.memory
    number = wanted.dossier_number
    previous = memory.get(number)
    trusted = memory.trusted(number)
    if trusted is not None:
        current = remembered_state(trusted)
        await complete(context.elements, current, wanted)
        return Known(current, trusted.read_at, previous)
    read_at = memory.now()
    return Known(await read_dossier(context.elements, wanted), read_at, previous)


async def remember_dossier(
    context: SyncContext,
    known: Known,
    wanted: DesiredCustomer,
    applied: Applied,
    *,
    upstream: DesiredCustomer | None,
    portal: PortalLocator | None = None,
) -> None:
    """Keep what Elements holds after `applied` (nothing is written when nothing changed)."""
    after = state_after(known.current, wanted, applied)
    klant = after.klant
    record = record_of(
        after,
        upstream=upstream,
        read_at=known.read_at,
        previous=known.previous,
        medewerker_id=context.medewerkers.get(klant.id) if klant else None,
        portal=portal,
    )
    await context.memory.remember(record)
