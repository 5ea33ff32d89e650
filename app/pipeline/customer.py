"""The pipeline's entry points: one per event type, each resolve → plan → apply for one dossier."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import structlog

from app.clients.anva import AnvaClient, AnvaContract
from app.clients.elements import ElementsClient
from app.clients.portal import PortalDirectory
from app.errors import ContractNotFound, PermanentError
from app.events import Operation
from app.keyed import KeyedLocks
from app.limiter import AMSTERDAM
from app.pipeline.apply import Applied, apply_plan
from app.pipeline.contract import KnownContract, created_contract, find_contract
from app.pipeline.contract_mapping import contract_payload, fingerprint, registratie_payload
from app.pipeline.current import read_dossier
from app.pipeline.mapping import desired_customer
from app.pipeline.model import DesiredCustomer
from app.pipeline.plan import DossierDefaults, plan_customer
from app.pipeline.resolve import resolve_customer
from app.settings import ContractSettings

log = structlog.get_logger(__name__)


def _today() -> date:
    return datetime.now(AMSTERDAM).date()


@dataclass
class Pipeline:
    """The three clients and what the steps share.

    Work on one dossier is serialised by `dossier_locks`: the consumer already orders
    messages per key, but a form (keyed by portal customer id) and a customer event
    (keyed by dossier number) can name the same dossier.
    """

    anva: AnvaClient
    portal: PortalDirectory
    elements: ElementsClient
    defaults: DossierDefaults
    contract_settings: ContractSettings = field(default_factory=ContractSettings)
    dossier_locks: KeyedLocks = field(default_factory=KeyedLocks)
    known_contracts: dict[str, KnownContract] = field(default_factory=dict)

    async def desired_customer(
        self, dossier_number: str, portal_customer_id: str | None = None
    ) -> DesiredCustomer:
        upstream = await resolve_customer(
            self.anva, self.portal, dossier_number, portal_customer_id
        )
        return desired_customer(dossier_number, upstream.account, upstream.portal)

    async def _sync_customer(
        self, desired: DesiredCustomer, operations: list[Operation]
    ) -> Applied:
        current = await read_dossier(self.elements, desired)
        steps = plan_customer(desired, current, self.defaults)
        return await apply_plan(self.elements, steps, current, operations)

    async def sync_customer(self, desired: DesiredCustomer, operations: list[Operation]) -> int:
        """Make Elements hold `desired`; returns the dossier id."""
        async with self.dossier_locks.hold(desired.dossier_number):
            applied = await self._sync_customer(desired, operations)
        return applied.dossier()

    async def sync_contract(
        self, contract_id: str, dossier_number: str, operations: list[Operation]
    ) -> int:
        """Create the contract once (syncing its dossier first when needed), record changes after."""
        contract = await self.anva.contract(contract_id)
        if contract is None:
            raise ContractNotFound(f"ANVA does not know contract {contract_id}")
        if contract.dossierNumber != dossier_number:
            log.warning(
                "contract names another dossier than its event; ANVA wins",
                contract_id=contract_id,
                event_dossier=dossier_number,
                anva_dossier=contract.dossierNumber,
            )
        number = contract.dossierNumber
        async with self.dossier_locks.hold(number):
            known = self.known_contracts.get(contract.id) or await find_contract(
                self.elements, number, contract.id
            )
            if known is None:
                known = await self._create_contract(contract, number, operations)
            elif known.fingerprint != fingerprint(contract):
                payload = registratie_payload(
                    contract, before=known.summary, created=False, settings=self.contract_settings
                )
                operations.append(
                    await self.elements.add_contract_registratie(
                        known.dossier_id, known.product_id, payload
                    )
                )
                known = known.synced_from(contract)
            self.known_contracts[contract.id] = known
            return known.dossier_id

    async def _create_contract(
        self, contract: AnvaContract, dossier_number: str, operations: list[Operation]
    ) -> KnownContract:
        desired = await self.desired_customer(dossier_number)
        applied = await self._sync_customer(desired, operations)
        if applied.klant is None or applied.standaard_adres_id is None:
            raise PermanentError(
                f"dossier {dossier_number} has no klant or correspondentieadres for a contract"
            )
        kind, klant_id = applied.klant
        dossier_id = applied.dossier()
        payload = contract_payload(
            contract,
            klant_kind=kind,
            klant_id=klant_id,
            adres_id=applied.standaard_adres_id,
            settings=self.contract_settings,
            today=_today(),
        )
        created = await self.elements.create_contract(dossier_id, payload)
        operations.append(created)
        known = created_contract(dossier_id, created, contract)
        registratie = registratie_payload(
            contract, before=None, created=True, settings=self.contract_settings
        )
        operations.append(
            await self.elements.add_contract_registratie(dossier_id, known.product_id, registratie)
        )
        return known
