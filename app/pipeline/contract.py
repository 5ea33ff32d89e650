"""contract.changed: exactly one Elements contract per ANVA contract id — find, plan, apply.

Finding the contract costs nothing while the dossier's record holds it (`KnownContract`,
kept on the state topic across restarts); without it one filtered dossier search
(`contractnummer`, a documented filter) tells whether it exists — no scan of the
dossier's products unless it does, once. The spec shows no `contractnummer` on a read,
so the product is recognised by the marker its `omschrijving` carries
(`contract_mapping.carries_marker`).

The contract is durably forgotten while it is being written to and remembered once the
writes are answered, so a retry after a lost answer (or a restart after a crash) reads
Elements again instead of adding the same registratie twice.
"""

from __future__ import annotations

import structlog

from app.clients.anva import AnvaContract
from app.clients.elements import ElementsClient, Write
from app.clients.limiter import today_in_amsterdam
from app.errors import ContractNotFound, PermanentError, StaleLocator
from app.events import ContractChanged
from app.pipeline.apply import Applied, apply_plan, writes_kept
from app.pipeline.context import SyncContext, Synced
from app.pipeline.contract_mapping import carries_marker, fingerprint_in
from app.pipeline.contract_plan import (
    ContractDossier,
    KnownContract,
    plan_contract_change,
    plan_new_contract,
)
from app.pipeline.customer import resolved_customer, sync_dossier
from app.pipeline.remembered import carries_number
from app.pipeline.steps import CreateMedewerker, Step
from app.state.record import DossierRecord

log = structlog.get_logger(__name__)


async def sync_contract(context: SyncContext, event: ContractChanged) -> Synced:
    """Create the contract once (syncing its dossier first when needed), record changes after."""
    contract = await context.anva.contract(event.contractId)
    if contract is None:
        raise ContractNotFound(f"ANVA does not know contract {event.contractId}")
    if contract.dossierNumber != event.dossierNumber:
        log.warning(
            "contract names another dossier than its event; ANVA wins",
            contract_id=event.contractId,
            event_dossier=event.dossierNumber,
            anva_dossier=contract.dossierNumber,
        )
    number = contract.dossierNumber
    async with context.owned(number), context.locators_checked(number):
        known = await _known_contract(context, number, contract.id)
        if known is None:
            known, writes = await _create_contract(context, contract, number)
        else:
            known, writes = await _record_change(context, contract, known, number)
        await _remember_contract(context, number, contract.id, known)
    return Synced(known.dossier_id, writes)


async def _known_contract(
    context: SyncContext, dossier_number: str, contract_id: str
) -> KnownContract | None:
    """Where the contract lives: the record's word for it, else one search in Elements."""
    record = context.memory.get(dossier_number)
    remembered = record.contracts.get(contract_id) if record is not None else None
    if remembered is not None:
        return remembered
    return await find_contract(context.elements, dossier_number, contract_id)


async def _remember_contract(
    context: SyncContext, dossier_number: str, contract_id: str, known: KnownContract | None
) -> None:
    """Keep where the contract lives in the dossier's record — or, with None, durably forget
    it before its writes (`StateUnavailable` when Kafka does not take that)."""
    memory = context.memory
    record = memory.get(dossier_number)
    if known is None:
        if record is not None and contract_id in record.contracts:
            await memory.keep_before_writes(record.with_contract(contract_id, None))
        return
    if record is None or record.dossier_id != known.dossier_id:
        record = DossierRecord(dossier_number=dossier_number, dossier_id=known.dossier_id)
    updated = record.with_contract(contract_id, known)
    if updated != record:
        await memory.remember(updated)


async def _record_change(
    context: SyncContext, contract: AnvaContract, known: KnownContract, dossier_number: str
) -> tuple[KnownContract, tuple[Write, ...]]:
    steps = plan_contract_change(contract, known, settings=context.contracts)
    if not steps:
        return known, ()
    if not await carries_number(context.elements, known.dossier_id, dossier_number):
        log.warning(
            "the remembered klantdossier no longer carries the dossier number or is deleted; "
            "searching again",
            dossier_id=known.dossier_id,
        )
        await _remember_contract(context, dossier_number, contract.id, None)
        await context.memory.forget(dossier_number)
        found = await find_contract(context.elements, dossier_number, contract.id)
        if found is None:
            return await _create_contract(context, contract, dossier_number)
        return await _record_change(context, contract, found, dossier_number)
    await _remember_contract(context, dossier_number, contract.id, None)
    applied = await apply_plan(context.elements, steps, Applied(known.dossier_id, confirmed=True))
    return known.synced_from(contract), applied.writes


def _medewerker_of(context: SyncContext, dossier_number: str, klant_id: int) -> int | None:
    """The medewerker this worker created to apply for the klant's contracts (the API lists
    none, so only the record knows it)."""
    record = context.memory.get(dossier_number)
    if record is None or record.klant is None or record.klant.id != klant_id:
        return None
    return record.medewerker_id


async def _create_contract(
    context: SyncContext, contract: AnvaContract, dossier_number: str
) -> tuple[KnownContract, tuple[Write, ...]]:
    """Sync the dossier, then create the contract in it; both plans' writes are reported."""
    desired = await resolved_customer(context, dossier_number)
    customer = await sync_dossier(context, desired)
    with writes_kept(customer.writes):
        if customer.klant is None or customer.standaard_adres_id is None:
            raise PermanentError(
                f"dossier {dossier_number} has no klant or correspondentieadres for a contract"
            )
        if not customer.confirmed and not await carries_number(
            context.elements, customer.dossier(), dossier_number
        ):
            await context.memory.forget(dossier_number)
            raise StaleLocator(f"the klantdossier of {dossier_number} changed while syncing it")
        dossier = ContractDossier(
            klant=customer.klant,
            adres_id=customer.standaard_adres_id,
            medewerker_id=_medewerker_of(context, dossier_number, customer.klant[1]),
        )
        steps = plan_new_contract(
            contract, desired, dossier, settings=context.contracts, today=today_in_amsterdam()
        )
        applied = await _applied_with_medewerker_kept(context, dossier_number, steps, customer)
    created = KnownContract(applied.dossier(), applied.contract(None), None)
    return created.synced_from(contract), (*customer.writes, *applied.writes)


async def _applied_with_medewerker_kept(
    context: SyncContext, dossier_number: str, steps: list[Step], start: Applied
) -> Applied:
    """Apply the contract's steps; a medewerker it creates is recorded the moment Elements
    acknowledged it: no later failure, crash or rebalance may make a second one, which
    could never be removed."""
    split = next((i + 1 for i, s in enumerate(steps) if isinstance(s, CreateMedewerker)), 0)
    first = await apply_plan(context.elements, steps[:split], start)
    if first.medewerker_id is not None and (record := context.memory.get(dossier_number)):
        await context.memory.remember(
            record.model_copy(update={"medewerker_id": first.medewerker_id})
        )
    with writes_kept(first.writes):
        rest = await apply_plan(context.elements, steps[split:], first)
    rest.writes = (*first.writes, *rest.writes)
    return rest


async def find_contract(
    elements: ElementsClient, dossier_number: str, contract_id: str
) -> KnownContract | None:
    """Look the contract up in Elements: one search, and two reads only when it exists.

    Only the dossier with this relatienummer counts: another customer's dossier holding
    the same contractnummer is never used.
    """
    holders = await elements.find_dossiers(relatienummer=dossier_number, contractnummer=contract_id)
    holders = [d for d in holders if d.relatienummer == dossier_number]
    if not holders:
        return None
    dossier_id = holders[0].id
    products = await elements.producten(dossier_id)
    product = next(
        (
            p
            for p in products
            if p.soort == "contracten" and carries_marker(p.omschrijving, contract_id)
        ),
        None,
    )
    if product is None:
        return None
    registraties = await elements.contract_registraties(dossier_id, product.id)
    marks = [fingerprint_in(r.onderwerp) for r in sorted(registraties, key=lambda r: r.id)]
    last = next((m for m in reversed(marks) if m), None)
    return KnownContract(dossier_id, product.id, last)
