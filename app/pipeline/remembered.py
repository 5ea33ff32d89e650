"""Where a plan starts, and what is remembered once it is applied.

A dossier whose record is trusted (`DossierMemory.trusted`) is planned against the
record, with no read of Elements but for a list the record does not know and the plan
needs; any other is found by a search, and its record then counts from that read.

The record may stand in for what a dossier holds, never for which dossier it is
(CONTRACT.md): a plan that writes, started from the record, first reads the klantdossier
by its id and goes on only while it still carries the dossier number and is not
deleted. Otherwise the record is durably marked unread and the plan starts again from a
search.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from app.clients.elements import ElementsClient, KlantKind
from app.errors import UpstreamRejected
from app.pipeline.apply import Applied, apply_plan
from app.pipeline.context import SyncContext
from app.pipeline.current import read_dossier_core
from app.pipeline.limits import Origins, check_lengths
from app.pipeline.mapping import CUSTOMER_ORIGINS
from app.pipeline.model import DesiredCustomer, DossierState, KlantState
from app.pipeline.steps import Step
from app.state.record import (
    DossierRecord,
    PortalLocator,
    record_of,
    remembered_state,
    state_after,
)

log = structlog.get_logger(__name__)


@dataclass
class Known:
    """The dossier a plan starts on, when it was read, its record before, and whether a
    read in this sync confirmed which dossier it is."""

    current: DossierState | None
    read_at: float
    previous: DossierRecord | None
    confirmed: bool


Planner = Callable[[Known], Awaitable[tuple[DesiredCustomer, list[Step]]]]
"""What to want and the steps to get there, from the dossier as known."""


async def known_dossier(
    context: SyncContext, dossier_number: str, kind: KlantKind, *, trust: bool = True
) -> Known:
    memory = context.memory
    previous = memory.get(dossier_number)
    trusted = memory.trusted(dossier_number) if trust else None
    if trusted is not None:
        return Known(remembered_state(trusted), trusted.read_at, previous, confirmed=False)
    read_at = memory.now()
    klant = previous.klant if previous is not None else None
    remembered = (
        (previous.dossier_id, KlantState(kind=klant.kind, id=klant.id))
        if previous is not None and klant is not None
        else None
    )
    current = await read_dossier_core(context.elements, dossier_number, kind, remembered)
    return Known(current, read_at, previous, confirmed=True)


async def carries_number(elements: ElementsClient, dossier_id: int, dossier_number: str) -> bool:
    """One read: the klantdossier still carries the dossier number and is not deleted."""
    dossier = await elements.dossier(dossier_id)
    return dossier is not None and dossier.carries(dossier_number)


async def planned(
    context: SyncContext, dossier_number: str, kind: KlantKind, planner: Planner
) -> tuple[Known, DesiredCustomer, list[Step]]:
    """Plan from the dossier as known, its identity confirmed before any step is applied."""
    known = await known_dossier(context, dossier_number, kind)
    wanted, steps = await planner(known)
    if not steps or known.confirmed or known.current is None:
        return known, wanted, steps
    if await carries_number(context.elements, known.current.id, dossier_number):
        known.confirmed = True
        return known, wanted, steps
    log.warning(
        "the remembered klantdossier no longer carries the dossier number or is deleted; "
        "searching again",
        dossier_id=known.current.id,
    )
    await context.memory.forget(dossier_number)
    known = await known_dossier(context, dossier_number, kind, trust=False)
    wanted, steps = await planner(known)
    return known, wanted, steps


async def applied_and_remembered(
    context: SyncContext,
    known: Known,
    wanted: DesiredCustomer,
    steps: list[Step],
    *,
    upstream: DesiredCustomer | None,
    portal: PortalLocator | None = None,
    origins: Origins = CUSTOMER_ORIGINS,
) -> Applied:
    """Apply a customer plan whose every value Elements takes (`origins` name them when
    not), and remember what Elements holds after it.

    The record is durably marked unread before the first write. When Elements refuses a
    step, the steps before it are remembered as done: what a customer did through a form
    stands even when a later field of the form is refused.
    """
    check_lengths(steps, origins)
    if steps:
        await context.memory.before_writes(wanted.dossier_number)
    try:
        start = Applied.on(known.current, confirmed=known.confirmed)
        applied = await apply_plan(context.elements, steps, start)
    except UpstreamRejected as refused:
        if refused.applied is not None and refused.applied.writes:
            await remember_dossier(
                context, known, wanted, refused.applied, upstream=upstream, portal=portal
            )
        raise
    await remember_dossier(context, known, wanted, applied, upstream=upstream, portal=portal)
    return applied


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
    record = record_of(
        after,
        upstream=upstream,
        read_at=known.read_at,
        previous=known.previous,
        medewerker_id=applied.medewerker_id,
        portal=portal,
    )
    await context.memory.remember(record)
