"""contract.changed: exactly one Elements contract per ANVA contract id — find, plan, apply.

Finding the contract costs nothing while the dossier's record holds it (`KnownContract`,
kept on the state topic across restarts); without it one filtered dossier search
(`contractnummer`, a documented filter) tells whether it exists — no scan of the
dossier's products unless it does, once. The spec shows no `contractnummer` on a read,
so the product is recognised by the marker its `omschrijving` carries
(`contract_plan.carries_marker`).

The contract is durably forgotten while it is being written to and remembered once the
writes are answered, so a retry after a lost answer (or a restart after a crash) reads
Elements again instead of adding the same registratie twice.
"""

from __future__ import annotations

import structlog

from app.clients.anva import AnvaContract
from app.clients.elements import ElementsClient
from app.clients.limiter import today_in_amsterdam
from app.domain.model import DesiredCustomer, KnownContract
from app.errors import ContractNotFound, PermanentError, StaleLocator
from app.events import ContractChanged, Operation
from app.pipeline.apply import Applied, CreateMedewerker, Step, apply_plan, writes_kept
from app.pipeline.context import SyncContext, Synced
from app.pipeline.contract_plan import (
    ContractDossier,
    carries_marker,
    fingerprint_in,
    plan_contract_change,
    plan_new_contract,
    synced_from,
)
from app.pipeline.dossier import identity_confirmed, sync_dossier
from app.pipeline.upstream import read_desired
from app.state.record import DossierRecord, MedewerkerFact

log = structlog.get_logger(__name__)


async def sync_contract(context: SyncContext, event: ContractChanged) -> Synced:
    """Create the contract once (syncing its dossier first when needed), record changes after."""
    context.event.progress("reading ANVA")
    with context.event.waiting(f"ANVA to answer for contract {event.contractId}"):
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
        context.event.progress("reading Elements and planning")
        record = context.memory.get(number)
        remembered = record.contracts.get(contract.id) if record is not None else None
        if remembered is not None:
            known, writes = await _record_change(context, contract, remembered, number)
        elif (trusted := context.memory.trusted(number)) and trusted.contracts_complete:
            known, writes = await _create_contract(context, contract, number)
        else:
            known, writes = await _found_or_created(context, contract, number)
    return Synced(known.dossier_id, writes)


async def _remember_contract(
    context: SyncContext,
    dossier_number: str,
    contract_id: str,
    known: KnownContract,
    *,
    before: DossierRecord | None = None,
) -> None:
    """Keep where the contract lives in the dossier's record; `before`: the record as it was
    before the writes it waited for, whose read and completeness count again now that they
    are done. A record of another dossier is replaced by one that knows only this contract,
    and trusts nothing else."""
    context.event.progress("saving the record")
    memory = context.memory
    record = memory.get(dossier_number)
    if record is None or record.dossier_id != known.dossier_id:
        record = DossierRecord(dossier_number=dossier_number, dossier_id=known.dossier_id)
    elif before is not None and before.dossier_id == known.dossier_id:
        record = record.model_copy(
            update={"read_at": before.read_at, "contracts_complete": before.contracts_complete}
        )
    updated = record.with_contract(contract_id, known)
    if updated != record:
        await memory.remember(updated)


async def _contract_writes_begin(
    context: SyncContext, dossier_number: str, contract_id: str
) -> DossierRecord | None:
    """Durably mark the record unread, without the contract and no longer naming every
    contract, before the contract's writes (`StateUnavailable` when Kafka does not take
    that): a crash or a lost answer in between makes the next attempt search Elements for
    the contract instead of trusting the record, for where it is or for its being new, even
    when a customer sync reads the dossier again in between. Returns the record as it was,
    which counts again once the writes are done."""
    context.event.progress("writing the contract to Elements")
    record = context.memory.get(dossier_number)
    if record is None:
        return None
    unsure = record.with_contract(contract_id, None).unread()
    await context.memory.keep_before_writes(
        unsure.model_copy(update={"contracts_complete": False}), context.event
    )
    return record


async def _record_change(
    context: SyncContext,
    contract: AnvaContract,
    known: KnownContract,
    dossier_number: str,
    *,
    confirmed: bool = False,
) -> tuple[KnownContract, tuple[Operation, ...]]:
    """Record a change of a contract the record or a search located; the dossier's identity
    is read first unless that search confirmed it (`confirmed`)."""
    steps = plan_contract_change(contract, known, settings=context.contracts)
    if not steps:
        await _remember_contract(context, dossier_number, contract.id, known)
        return known, ()
    if not confirmed and not await identity_confirmed(context, known.dossier_id, dossier_number):
        return await _found_or_created(context, contract, dossier_number)
    before = await _contract_writes_begin(context, dossier_number, contract.id)
    applied = await apply_plan(context.elements, steps, Applied(known.dossier_id, confirmed=True))
    changed = synced_from(known, contract)
    await _remember_contract(context, dossier_number, contract.id, changed, before=before)
    return changed, applied.writes


async def _found_or_created(
    context: SyncContext, contract: AnvaContract, dossier_number: str
) -> tuple[KnownContract, tuple[Operation, ...]]:
    """Without a record to trust: sync the dossier from a search first. A dossier that search
    did not find (and the sync created) holds no contract, so only a dossier it found is
    searched for the contract; that search confirms the dossier it finds the contract in."""
    desired = await read_desired(context, dossier_number)
    customer = await sync_dossier(context, desired)
    if not customer.created_dossier:
        with writes_kept(customer.writes):
            found = await find_contract(context.elements, dossier_number, contract.id)
        if found is not None:
            known, writes = await _record_change(
                context, contract, found, dossier_number, confirmed=True
            )
            return known, (*customer.writes, *writes)
    return await _created_in(context, contract, desired, customer)


async def _create_contract(
    context: SyncContext, contract: AnvaContract, dossier_number: str
) -> tuple[KnownContract, tuple[Operation, ...]]:
    """The record, trusted and naming every contract this worker made in the dossier, says it
    holds no such contract: sync the dossier (from the record), then create the contract."""
    desired = await read_desired(context, dossier_number)
    customer = await sync_dossier(context, desired)
    return await _created_in(context, contract, desired, customer)


async def _created_in(
    context: SyncContext, contract: AnvaContract, desired: DesiredCustomer, customer: Applied
) -> tuple[KnownContract, tuple[Operation, ...]]:
    """Create the contract in the dossier `customer` synced; both plans' writes are reported.

    The record is durably marked unread before the contract is written, so a crash or a
    lost answer in between makes the next attempt search instead of trusting the record's
    word that the contract is new; once written, the record counts from its read again.
    """
    number = desired.dossier_number
    with writes_kept(customer.writes):
        if customer.klant is None or customer.standaard_adres_id is None:
            raise PermanentError(
                f"dossier {number} has no klant or correspondentieadres for a contract"
            )
        if not customer.confirmed and not await identity_confirmed(
            context, customer.dossier(), number
        ):
            raise StaleLocator(f"the klantdossier of {number} changed while syncing it")
        dossier = ContractDossier(
            klant=customer.klant,
            adres_id=customer.standaard_adres_id,
            medewerker_id=context.memory.medewerker(number, customer.klant[1]),
        )
        steps = plan_new_contract(
            contract, desired, dossier, settings=context.contracts, today=today_in_amsterdam()
        )
        before = await _contract_writes_begin(context, number, contract.id)
        applied = await _applied_with_medewerker_kept(context, number, steps, customer)
    created = KnownContract(applied.dossier(), applied.contract(None), None)
    await _remember_contract(
        context, number, contract.id, synced_from(created, contract), before=before
    )
    return synced_from(created, contract), (*customer.writes, *applied.writes)


async def _applied_with_medewerker_kept(
    context: SyncContext, dossier_number: str, steps: list[Step], start: Applied
) -> Applied:
    """Apply the contract's steps; a medewerker it creates is recorded the moment Elements
    acknowledged it: no later failure, crash or rebalance may make a second one, which
    could never be removed."""
    split = next((i + 1 for i, s in enumerate(steps) if isinstance(s, CreateMedewerker)), 0)
    first = await apply_plan(context.elements, steps[:split], start)
    if first.medewerker_id is not None and start.klant is not None:
        await context.memory.keep_medewerker(
            dossier_number,
            MedewerkerFact(klant_id=start.klant[1], medewerker_id=first.medewerker_id),
        )
    with writes_kept(first.writes):
        rest = await apply_plan(context.elements, steps[split:], first)
    rest.writes = (*first.writes, *rest.writes)
    return rest


async def find_contract(
    elements: ElementsClient, dossier_number: str, contract_id: str
) -> KnownContract | None:
    """Look the contract up in Elements: one search, and two reads only when it exists.

    Only a dossier that carries this relatienummer counts: another customer's dossier
    holding the same contractnummer is never used, nor one a person deleted (a duplicate
    of the number may be the live one). The search thus confirms the dossier's identity
    as the customer path's does (`read_dossier_core`), and the caller writes into it
    without another read.
    """
    holders = await elements.find_dossiers(relatienummer=dossier_number, contractnummer=contract_id)
    holders = [d for d in holders if d.carries(dossier_number)]
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
